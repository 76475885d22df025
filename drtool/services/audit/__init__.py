"""The audit trail of sensitive operations: appending records, listing and verifying them."""
