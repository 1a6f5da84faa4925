"""The e-Stat API: client, typed errors, response shapes and the local emulator. No Dagster here."""
