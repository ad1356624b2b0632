//! EC2: `ec2.delete-network-interfaces` (one file per action; nothing shared yet).

mod delete_network_interfaces;

pub use self::delete_network_interfaces::DELETE_NETWORK_INTERFACES;
