"""The bridge's configuration: YAML -> frozen dataclasses, validated once, at load.

The one import point: callers import from ``vadbridge.config``, never its inner modules.
"""

from vadbridge.config.docs import render_markdown
from vadbridge.config.loader import (
    apply_overrides,
    format_config_error,
    load_config,
    parse_config,
    parse_host_port,
)
from vadbridge.config.schema import (
    BridgeConfig,
    LivelinessConfig,
    LiveLinkOutputConfig,
    ModelConfig,
    MqttInputConfig,
    MqttOutputConfig,
    OscInputConfig,
    OscOutputConfig,
    OutputConfig,
    RecordOutputConfig,
    TlsConfig,
    VmcOutputConfig,
)
from vadbridge.config.types import ConfigError, Shard

__all__ = [
    "BridgeConfig",
    "ConfigError",
    "LiveLinkOutputConfig",
    "LivelinessConfig",
    "ModelConfig",
    "MqttInputConfig",
    "MqttOutputConfig",
    "OscInputConfig",
    "OscOutputConfig",
    "OutputConfig",
    "RecordOutputConfig",
    "Shard",
    "TlsConfig",
    "VmcOutputConfig",
    "apply_overrides",
    "format_config_error",
    "load_config",
    "parse_config",
    "parse_host_port",
    "render_markdown",
]
