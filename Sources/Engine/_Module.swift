// Module Engine: see README.md beside this file.
