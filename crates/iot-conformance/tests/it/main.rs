//! Every scenario of the suite against every driver: the same assertions for iot-blocking and iot-hyper.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// One test per scenario for a driver, each under the suite's time limit.
macro_rules! suite {
    ($module:ident, $driver:ty) => {
        mod $module {
            use iot_conformance::harness::bounded;
            use iot_conformance::scenarios;

            #[test]
            fn every_endpoint() {
                bounded(scenarios::every_endpoint::<$driver>);
            }

            #[test]
            fn walk_equals_list() {
                bounded(scenarios::walk_equals_list::<$driver>);
            }

            #[test]
            fn token_expires_midway() {
                bounded(scenarios::token_expires_midway::<$driver>);
            }

            #[test]
            fn throttling_is_retried() {
                bounded(scenarios::throttling_is_retried::<$driver>);
            }

            #[test]
            fn error_answer() {
                bounded(scenarios::error_answer::<$driver>);
            }

            #[test]
            fn create_in_doubt() {
                bounded(scenarios::create_in_doubt::<$driver>);
            }
        }
    };
}

suite!(blocking, iot_conformance::drivers::Blocking);
suite!(hyper, iot_conformance::drivers::Hyper);
