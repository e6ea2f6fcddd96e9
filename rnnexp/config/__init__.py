"""Owns the checking of what a user types: every config value is checked where it enters (``check_config``,
before any data is read or model built), and a bad one fails with one paragraph naming the key, the value
and the fix. Data files are checked by the datamodule that parses them, checkpoints by rnnexp.lifecycle.checkpoint."""
