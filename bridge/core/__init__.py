"""The pure core of the bridge: the avatar table, smoothing, the animator, liveliness, the frame
pacer, input statistics and the OSC codec. No sockets; below it only config and the model."""
