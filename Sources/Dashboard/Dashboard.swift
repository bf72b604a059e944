// Module Dashboard: see docs in README.md (Architecture).
