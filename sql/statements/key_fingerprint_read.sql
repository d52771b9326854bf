-- The fingerprint of the key the store's pseudonyms were made with.
SELECT fingerprint FROM pseudonym_key
