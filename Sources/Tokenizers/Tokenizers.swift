// Module Tokenizers: see docs in README.md (Architecture).
