//! The rules of the program, apart from HTTP: each service takes the state or a
//! connection and a `Principal`, and answers with wire types or an `ApiError`.

pub mod accounts;
pub mod audit;
pub mod org_units;
pub mod sessions;
