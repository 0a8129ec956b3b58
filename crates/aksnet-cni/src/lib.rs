//! aksnet-cni library: the plugin commands (skeleton).
