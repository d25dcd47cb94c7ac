//! The wire contract of the Đồng Hành API: every request and response body, the ids
//! and enums they carry, and the RFC 9457 problem body. Phones and the server both
//! build against this crate, so it depends on neither axum nor sea-orm.

pub mod account;
pub mod audit;
pub mod intake;
pub mod org_unit;
pub mod paging;
pub mod problem;
pub mod review;
pub mod role;
pub mod stock;

pub use account::*;
pub use audit::*;
pub use intake::*;
pub use org_unit::*;
pub use paging::*;
pub use problem::*;
pub use review::*;
pub use role::*;
pub use stock::*;
