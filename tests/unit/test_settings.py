"""Settings are validated at start, and every message names the environment variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from server.settings import SettingsError, load_settings
from tests.support.live import ROOT


@pytest.fixture
def env(tmp_path):
    return {"DATA_DIR": str(tmp_path)}


@pytest.mark.parametrize(
    ("extra", "variable"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"WORKERS": "4"}, "REDIS_URL"),
        ({"WORKERS": "0"}, "WORKERS"),
        ({"DATABASE_URL": "mysql://db/corkboard"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://db/corkboard"}, "DATABASE_URL"),
        ({"REDIS_URL": "redis://127.0.0.1:6379/0"}, "SECRET_KEY"),
        ({"REDIS_URL": "http://redis"}, "REDIS_URL"),
        ({"SMTP_URL": "mail.example.com"}, "SMTP_URL"),
        ({"ACCESS_TOKEN_TTL": "0"}, "ACCESS_TOKEN_TTL"),
        ({"LOGIN_MAX_FAILURES": "many"}, "LOGIN_MAX_FAILURES"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"TRUST_PROXY_HEADERS": "perhaps"}, "TRUST_PROXY_HEADERS"),
        ({"TRUSTED_PROXIES": "10.0.0.1,proxy.local"}, "TRUSTED_PROXIES"),
        ({"SENTRY_DSN": "sentry.example.com/1"}, "SENTRY_DSN"),
    ],
)
def test_bad_values_name_the_variable(env, extra, variable):
    with pytest.raises(SettingsError) as info:
        load_settings({**env, **extra})
    assert variable in str(info.value)


def test_defaults_are_the_embedded_setup(env, tmp_path):
    settings = load_settings(env)
    assert settings.is_embedded
    assert settings.is_sqlite
    assert settings.effective_database_url == f"sqlite+aiosqlite:///{tmp_path / 'corkboard.db'}"
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8000, 1)
    # a generated key, kept beside the database so restarts keep sessions valid
    assert len(settings.secret_key) > 40
    assert load_settings(env).secret_key == settings.secret_key


def test_values_are_converted(env):
    settings = load_settings(
        {
            **env,
            "PORT": "9001",
            "TRUST_PROXY_HEADERS": "true",
            "CORS_ORIGINS": "https://a.example, https://b.example",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "SECRET_KEY": "k" * 40,
            "WORKERS": "2",
        }
    )
    assert settings.port == 9001
    assert settings.trust_proxy_headers is True
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.workers == 2


def test_dotenv_file_is_read_and_the_environment_wins(tmp_path, monkeypatch):
    dotenv = tmp_path / "corkboard.env"
    dotenv.write_text(f"PORT=9100\nDATA_DIR={tmp_path}\nLOG_LEVEL=DEBUG\n")
    monkeypatch.setenv("CORKBOARD_ENV_FILE", str(dotenv))
    monkeypatch.setenv("LOG_LEVEL", "ERROR")
    settings = load_settings()
    assert settings.port == 9100
    assert settings.log_level == "ERROR"


def test_the_cli_refuses_bad_settings_naming_the_variable(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "server", "serve"],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "DATA_DIR": str(tmp_path), "PORT": "eighty"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_wsproto_without_its_package_is_named(monkeypatch):
    import server.settings as settings_module

    monkeypatch.setattr(settings_module, "find_spec", lambda name: None)
    with pytest.raises(SettingsError, match="WS_IMPL=wsproto"):
        load_settings({"WS_IMPL": "wsproto", "SECRET_KEY": "x" * 40})
