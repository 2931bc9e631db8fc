// Module Quantization: see README.md beside this file.
