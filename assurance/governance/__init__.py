"""The portfolio: findings ledger, inventory, KPIs, revalidation cadence, alerts, and run-worker liveness."""
