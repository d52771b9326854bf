-- The fingerprint of the pseudonym key the store's pseudonyms were made with (an HMAC under the
-- key, which says nothing about the key): a process started with another key is refused before
-- it stores a pseudonym that would not match, which would duplicate every patient.
CREATE TABLE pseudonym_key (
  one          boolean     PRIMARY KEY DEFAULT true CHECK (one),
  fingerprint  text        NOT NULL,
  set_at       timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON pseudonym_key FROM PUBLIC;
GRANT SELECT, INSERT ON pseudonym_key TO fra_writer;
