//! The integration tests: one binary, so the SDK is linked once, with one moto server per process
//! (`support::moto`) shared by every module. Each module is one area of behaviour.

mod support;

mod actions_cloudformation;
mod actions_command;
mod actions_ec2;
mod actions_ecs;
mod actions_events;
mod actions_logs;
mod actions_secretsmanager;
mod actions_sns;
mod alerting_lab;
mod call_budget;
mod cli;
mod command_line;
mod deploy;
mod engine;
mod failures;
mod fixture_check;
mod harness;
mod init;
mod layers;
mod lookups;
mod output_streams;
mod plan;
mod plan_properties;
mod plan_schema;
mod preview;
mod readme_tables;
mod real_teardown;
mod real_workshop;
mod render;
mod resume;
mod rotate;
mod safety;
mod selectors;
mod sweep;
mod sweep_accounts;
mod throttling;
mod waits;
mod workshop;
