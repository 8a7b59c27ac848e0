//! Who may do what. Rezef serves customer data, so every call to a `rezef.v1` service carries
//! an API key (`authorization: Bearer rzf_…`) and the key says for which tenant (or all
//! tenants, for operators) and in which roles it acts. This crate is the model, with no
//! network in it: [`Role`]s, [`Credential`]s and the [`Token`]s that prove them, the key file
//! that keeps credentials hashed ([`KeyFile`]), and the table of which roles each gRPC method
//! needs ([`access`]). The server enforces it in one place, before any handler runs
//! (docs/security.md).
//!
//! Secrets are 256 random bits, so a fast hash (BLAKE3) is as safe to store as a slow
//! password hash would be: there is nothing to guess.

pub mod access;
mod credential;
mod error;
mod keyfile;
mod limits;
mod role;

pub use access::{Need, acts_as_agent, authorize, need, speaks_as, verifies};
pub use credential::{Credential, NewKey, Scope, Token, VERIFY_METHODS};
pub use error::{Denied, Error, Unauthenticated};
pub use keyfile::{KeyFile, Keys};
pub use limits::{Bucket, Limits};
pub use role::Role;
