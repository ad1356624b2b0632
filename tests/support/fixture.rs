//! The emulated workshop and its bystanders (being written).
