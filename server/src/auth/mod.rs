//! Authentication and authorization: argon2id passwords, HS256 access tokens with a
//! `kid`, opaque rotating refresh tokens, and the extractors that put the caller's role
//! into a handler's signature (`Admin`, `Supervisor`, `FieldWorker`, `Principal`).

pub mod passwords;
pub mod principal;
pub mod tokens;

pub use principal::{Admin, FieldWorker, Principal, Supervisor};
