"""The portfolio: findings ledger, inventory, KPIs, revalidation cadence and alerts."""
