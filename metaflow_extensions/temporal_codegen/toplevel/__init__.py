# Loaded when `metaflow` is imported (after its plugins): says so when another
# installed extension also claims the `temporal` command or deployer.
toplevel = "rival_check"
