// Module Models: see docs in README.md (Architecture).
