"""What several test modules share (data seeders, sync helpers, constants), so that no test
module imports another."""
