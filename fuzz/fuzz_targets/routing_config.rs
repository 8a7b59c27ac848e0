//! A routing configuration (`rezef_routing::config::RoutingConfig::from_toml`) from any text:
//! a compiled configuration or its mistakes, never a panic. A file that reads as a
//! configuration compiles exactly when its value does, and printed back as TOML it reads as
//! the same configuration, which compiles the same way.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rezef_routing::config::RoutingConfig;

fuzz_target!(|text: &str| {
    let compiled = RoutingConfig::from_toml(text);
    if let Err(mistakes) = &compiled {
        assert!(!mistakes.is_empty(), "a refusal names its mistakes");
    }
    let Ok(config) = toml::from_str::<RoutingConfig>(text) else {
        return;
    };
    assert_eq!(
        compiled.is_ok(),
        config.clone().compile().is_ok(),
        "the file compiles exactly when its value does"
    );
    let printed = toml::to_string(&config).expect("a configuration prints as TOML");
    let reread: RoutingConfig = match toml::from_str(&printed) {
        Ok(reread) => reread,
        Err(e) => panic!("the printed configuration does not read: {e}\n{printed}"),
    };
    // Compared printed, not as values: a NaN priority is never equal to itself.
    assert_eq!(
        toml::to_string(&reread).expect("prints"),
        printed,
        "printed back, it reads the same"
    );
    assert_eq!(
        RoutingConfig::from_toml(&printed).is_ok(),
        compiled.is_ok(),
        "printed back, it compiles the same"
    );
});
