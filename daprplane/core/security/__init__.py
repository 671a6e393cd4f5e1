"""SPIFFE identities for every component: IDs, Sentry client, rotating SVIDs, TLS credentials."""
