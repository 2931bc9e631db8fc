// Module Sensitivity: estimators and the measurement run store.
