"""The board domain over REST: role policy, optimistic concurrency, positions, services, controllers."""
