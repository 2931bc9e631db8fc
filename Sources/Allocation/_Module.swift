// Module Allocation: see README.md beside this file.
