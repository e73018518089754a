"""The bridge's configuration: YAML -> frozen dataclasses, validated once, at load.

The one import point: callers import from ``vadbridge.config``, never its inner modules
(``errors``, ``specs`` and ``values``: the vocabulary; ``mqtt``, ``inputs``, ``outputs``,
``vtube_studio``, ``web`` and ``schema``: the schema; ``loader``: YAML -> dataclasses;
``overrides``: the command-line flags; ``docs``: the generated reference). The facts other
layers check too — the port and frame-rate ranges, the avatar-id pattern, MQTT's string limit,
what a loopback host is — are exported here, stated once.
``python -m vadbridge.config`` prints the reference or validates a file.
"""

from vadbridge.config.docs import render_markdown
from vadbridge.config.errors import ConfigError
from vadbridge.config.inputs import InputConfig, MqttInputConfig, OscInputConfig
from vadbridge.config.loader import format_config_error, load_config, parse_config
from vadbridge.config.mqtt import MQTT_PROTOCOL_NAMES, MqttConnectionConfig, TlsConfig
from vadbridge.config.outputs import (
    IFacialMocapOutputConfig,
    LiveLinkOutputConfig,
    MqttOutputConfig,
    OscOutputConfig,
    OutputConfig,
    RecordOutputConfig,
    VmcOutputConfig,
)
from vadbridge.config.overrides import apply_overrides, parse_host_port
from vadbridge.config.schema import (
    DEFAULT_PACING_MODE,
    PACING_MODE_NAMES,
    AvatarsConfig,
    BridgeConfig,
    LimitsConfig,
    LivelinessConfig,
    ModelConfig,
    SmoothingConfig,
    SmoothingSpace,
)
from vadbridge.config.values import (
    AVATAR_ID_PATTERN,
    AVATAR_ID_RULE,
    FRAME_RATE_RANGE,
    MQTT_MAX_STRING_BYTES,
    PORT_RANGE,
    Shard,
    is_loopback,
    is_port,
)
from vadbridge.config.vtube_studio import (
    MAPPING_INPUT_INDEX,
    MAPPING_INPUTS,
    VAD_INPUTS,
    VtsMappingRow,
    VtubeStudioOutputConfig,
    custom_parameter_names,
    format_mapping_row,
    is_vts_parameter_name,
    parse_mapping_row,
    websocket_host_port,
)
from vadbridge.config.web import WebConfig

__all__ = [
    "AVATAR_ID_PATTERN",
    "AVATAR_ID_RULE",
    "DEFAULT_PACING_MODE",
    "FRAME_RATE_RANGE",
    "MAPPING_INPUTS",
    "MAPPING_INPUT_INDEX",
    "MQTT_MAX_STRING_BYTES",
    "MQTT_PROTOCOL_NAMES",
    "PACING_MODE_NAMES",
    "PORT_RANGE",
    "VAD_INPUTS",
    "AvatarsConfig",
    "BridgeConfig",
    "ConfigError",
    "IFacialMocapOutputConfig",
    "InputConfig",
    "LimitsConfig",
    "LiveLinkOutputConfig",
    "LivelinessConfig",
    "ModelConfig",
    "MqttConnectionConfig",
    "MqttInputConfig",
    "MqttOutputConfig",
    "OscInputConfig",
    "OscOutputConfig",
    "OutputConfig",
    "RecordOutputConfig",
    "Shard",
    "SmoothingConfig",
    "SmoothingSpace",
    "TlsConfig",
    "VmcOutputConfig",
    "VtsMappingRow",
    "VtubeStudioOutputConfig",
    "WebConfig",
    "apply_overrides",
    "custom_parameter_names",
    "format_config_error",
    "format_mapping_row",
    "is_loopback",
    "is_port",
    "is_vts_parameter_name",
    "load_config",
    "parse_config",
    "parse_host_port",
    "parse_mapping_row",
    "render_markdown",
    "websocket_host_port",
]
