// Module HDF5: see README.md beside this file.
