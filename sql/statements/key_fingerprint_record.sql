-- Records the pseudonym key's fingerprint ($1) when none is recorded; returns a row when it did.
INSERT INTO pseudonym_key (fingerprint) VALUES ($1) ON CONFLICT DO NOTHING RETURNING 1
