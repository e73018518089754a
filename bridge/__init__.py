"""vadbridge: VAD in over OSC/MQTT, ARKit blendshapes out over VMC, OSC and Live Link."""
