//! The I/O of the connection kinds: the controller that checks connections and holds their
//! deletion while they are in use. Clients and credentials are [`crate::tenancy`]'s.

pub mod controller;
