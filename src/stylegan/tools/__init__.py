"""Tools that use a trained generator: image generation, style mixing, and (later) projection and studies."""
