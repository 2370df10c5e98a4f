//! Integration tests of the Salesforce plugin against the loopback Salesforce simulator,
//! calling the plugin's methods in process with the SDK's recording host.

mod device_flow;
mod import;
mod proxy;
mod support;
mod test_connection;
