//! Tax GIP authentication: a WS-Security UsernameToken per request, exactly as for LIS.
//!
//! The GIP also defines an XMLDSig signature of `<DATA>` in `<SECURITY>` with the
//! partner's certificate; that needs a certificate the department does not have yet
//! and is not implemented (see the module docs).

pub use crate::lis::auth::Credentials;
