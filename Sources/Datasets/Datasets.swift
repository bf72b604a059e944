// Module Datasets: see docs in README.md (Architecture).
