//! Black-box integration tests live in `api/`; this library is intentionally empty.
