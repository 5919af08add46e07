"""The tamper-evident audit log: who revealed or changed encrypted values, key operations,
failed decryptions. ``log.record()`` writes an entry; ``log.verify()`` checks the chain."""
