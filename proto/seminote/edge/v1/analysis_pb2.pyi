from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AudioEncoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIO_ENCODING_UNSPECIFIED: _ClassVar[AudioEncoding]
    AUDIO_ENCODING_PCM16_LE: _ClassVar[AudioEncoding]
    AUDIO_ENCODING_FLOAT32_LE: _ClassVar[AudioEncoding]
    AUDIO_ENCODING_OPUS: _ClassVar[AudioEncoding]

class Analysis(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ANALYSIS_UNSPECIFIED: _ClassVar[Analysis]
    ANALYSIS_ONSETS: _ClassVar[Analysis]
    ANALYSIS_FEATURES: _ClassVar[Analysis]
    ANALYSIS_NOTES: _ClassVar[Analysis]
    ANALYSIS_REFINED_NOTES: _ClassVar[Analysis]
    ANALYSIS_FEEDBACK: _ClassVar[Analysis]

class NoteTier(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NOTE_TIER_UNSPECIFIED: _ClassVar[NoteTier]
    NOTE_TIER_FAST: _ClassVar[NoteTier]
    NOTE_TIER_REFINED: _ClassVar[NoteTier]

class NoteAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NOTE_ACTION_UNSPECIFIED: _ClassVar[NoteAction]
    NOTE_ACTION_ON: _ClassVar[NoteAction]
    NOTE_ACTION_OFF: _ClassVar[NoteAction]
    NOTE_ACTION_CONFIRM: _ClassVar[NoteAction]
    NOTE_ACTION_CORRECT: _ClassVar[NoteAction]
    NOTE_ACTION_RETRACT: _ClassVar[NoteAction]

class WarningCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WARNING_CODE_UNSPECIFIED: _ClassVar[WarningCode]
    WARNING_CODE_SEQUENCE_GAP: _ClassVar[WarningCode]
    WARNING_CODE_DUPLICATE_SEQUENCE: _ClassVar[WarningCode]
    WARNING_CODE_MALFORMED_AUDIO: _ClassVar[WarningCode]
AUDIO_ENCODING_UNSPECIFIED: AudioEncoding
AUDIO_ENCODING_PCM16_LE: AudioEncoding
AUDIO_ENCODING_FLOAT32_LE: AudioEncoding
AUDIO_ENCODING_OPUS: AudioEncoding
ANALYSIS_UNSPECIFIED: Analysis
ANALYSIS_ONSETS: Analysis
ANALYSIS_FEATURES: Analysis
ANALYSIS_NOTES: Analysis
ANALYSIS_REFINED_NOTES: Analysis
ANALYSIS_FEEDBACK: Analysis
NOTE_TIER_UNSPECIFIED: NoteTier
NOTE_TIER_FAST: NoteTier
NOTE_TIER_REFINED: NoteTier
NOTE_ACTION_UNSPECIFIED: NoteAction
NOTE_ACTION_ON: NoteAction
NOTE_ACTION_OFF: NoteAction
NOTE_ACTION_CONFIRM: NoteAction
NOTE_ACTION_CORRECT: NoteAction
NOTE_ACTION_RETRACT: NoteAction
WARNING_CODE_UNSPECIFIED: WarningCode
WARNING_CODE_SEQUENCE_GAP: WarningCode
WARNING_CODE_DUPLICATE_SEQUENCE: WarningCode
WARNING_CODE_MALFORMED_AUDIO: WarningCode

class StreamConfig(_message.Message):
    __slots__ = ("sample_rate_hz", "encoding", "channels", "analyses", "session_id", "client_name", "resume")
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    ANALYSES_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_NAME_FIELD_NUMBER: _ClassVar[int]
    RESUME_FIELD_NUMBER: _ClassVar[int]
    sample_rate_hz: int
    encoding: AudioEncoding
    channels: int
    analyses: _containers.RepeatedScalarFieldContainer[Analysis]
    session_id: str
    client_name: str
    resume: ResumeFrom
    def __init__(self, sample_rate_hz: _Optional[int] = ..., encoding: _Optional[_Union[AudioEncoding, str]] = ..., channels: _Optional[int] = ..., analyses: _Optional[_Iterable[_Union[Analysis, str]]] = ..., session_id: _Optional[str] = ..., client_name: _Optional[str] = ..., resume: _Optional[_Union[ResumeFrom, _Mapping]] = ...) -> None: ...

class ResumeFrom(_message.Message):
    __slots__ = ("last_result_seq",)
    LAST_RESULT_SEQ_FIELD_NUMBER: _ClassVar[int]
    last_result_seq: int
    def __init__(self, last_result_seq: _Optional[int] = ...) -> None: ...

class AudioChunk(_message.Message):
    __slots__ = ("seq", "data", "capture_t_ns")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_T_NS_FIELD_NUMBER: _ClassVar[int]
    seq: int
    data: bytes
    capture_t_ns: int
    def __init__(self, seq: _Optional[int] = ..., data: _Optional[bytes] = ..., capture_t_ns: _Optional[int] = ...) -> None: ...

class AnalyzeRequest(_message.Message):
    __slots__ = ("config", "audio")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    config: StreamConfig
    audio: AudioChunk
    def __init__(self, config: _Optional[_Union[StreamConfig, _Mapping]] = ..., audio: _Optional[_Union[AudioChunk, _Mapping]] = ...) -> None: ...

class StreamStarted(_message.Message):
    __slots__ = ("session_id", "node_id", "analysis_sample_rate_hz", "frame_samples", "hop_samples", "algorithmic_latency_s", "analyses", "max_chunk_bytes", "next_audio_seq", "resumed", "replayed_results", "credit_chunks")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    FRAME_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    HOP_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    ALGORITHMIC_LATENCY_S_FIELD_NUMBER: _ClassVar[int]
    ANALYSES_FIELD_NUMBER: _ClassVar[int]
    MAX_CHUNK_BYTES_FIELD_NUMBER: _ClassVar[int]
    NEXT_AUDIO_SEQ_FIELD_NUMBER: _ClassVar[int]
    RESUMED_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_RESULTS_FIELD_NUMBER: _ClassVar[int]
    CREDIT_CHUNKS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    node_id: str
    analysis_sample_rate_hz: int
    frame_samples: int
    hop_samples: int
    algorithmic_latency_s: float
    analyses: _containers.RepeatedScalarFieldContainer[Analysis]
    max_chunk_bytes: int
    next_audio_seq: int
    resumed: bool
    replayed_results: int
    credit_chunks: int
    def __init__(self, session_id: _Optional[str] = ..., node_id: _Optional[str] = ..., analysis_sample_rate_hz: _Optional[int] = ..., frame_samples: _Optional[int] = ..., hop_samples: _Optional[int] = ..., algorithmic_latency_s: _Optional[float] = ..., analyses: _Optional[_Iterable[_Union[Analysis, str]]] = ..., max_chunk_bytes: _Optional[int] = ..., next_audio_seq: _Optional[int] = ..., resumed: _Optional[bool] = ..., replayed_results: _Optional[int] = ..., credit_chunks: _Optional[int] = ...) -> None: ...

class OnsetEvent(_message.Message):
    __slots__ = ("time_s", "strength", "detected_at_s")
    TIME_S_FIELD_NUMBER: _ClassVar[int]
    STRENGTH_FIELD_NUMBER: _ClassVar[int]
    DETECTED_AT_S_FIELD_NUMBER: _ClassVar[int]
    time_s: float
    strength: float
    detected_at_s: float
    def __init__(self, time_s: _Optional[float] = ..., strength: _Optional[float] = ..., detected_at_s: _Optional[float] = ...) -> None: ...

class FeatureFrames(_message.Message):
    __slots__ = ("first_time_s", "hop_s", "rms_db", "spectral_centroid_hz", "spectral_flux")
    FIRST_TIME_S_FIELD_NUMBER: _ClassVar[int]
    HOP_S_FIELD_NUMBER: _ClassVar[int]
    RMS_DB_FIELD_NUMBER: _ClassVar[int]
    SPECTRAL_CENTROID_HZ_FIELD_NUMBER: _ClassVar[int]
    SPECTRAL_FLUX_FIELD_NUMBER: _ClassVar[int]
    first_time_s: float
    hop_s: float
    rms_db: _containers.RepeatedScalarFieldContainer[float]
    spectral_centroid_hz: _containers.RepeatedScalarFieldContainer[float]
    spectral_flux: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, first_time_s: _Optional[float] = ..., hop_s: _Optional[float] = ..., rms_db: _Optional[_Iterable[float]] = ..., spectral_centroid_hz: _Optional[_Iterable[float]] = ..., spectral_flux: _Optional[_Iterable[float]] = ...) -> None: ...

class NoteEvent(_message.Message):
    __slots__ = ("note_id", "tier", "action", "midi_pitch", "onset_s", "offset_s", "velocity", "confidence")
    NOTE_ID_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    MIDI_PITCH_FIELD_NUMBER: _ClassVar[int]
    ONSET_S_FIELD_NUMBER: _ClassVar[int]
    OFFSET_S_FIELD_NUMBER: _ClassVar[int]
    VELOCITY_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    note_id: int
    tier: NoteTier
    action: NoteAction
    midi_pitch: int
    onset_s: float
    offset_s: float
    velocity: float
    confidence: float
    def __init__(self, note_id: _Optional[int] = ..., tier: _Optional[_Union[NoteTier, str]] = ..., action: _Optional[_Union[NoteAction, str]] = ..., midi_pitch: _Optional[int] = ..., onset_s: _Optional[float] = ..., offset_s: _Optional[float] = ..., velocity: _Optional[float] = ..., confidence: _Optional[float] = ...) -> None: ...

class ChunkResult(_message.Message):
    __slots__ = ("seq", "capture_t_ns", "server_processing_ns", "onsets", "features", "notes", "stream_time_s", "checkpoint_seq", "replayed", "retracted_onsets_s")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_T_NS_FIELD_NUMBER: _ClassVar[int]
    SERVER_PROCESSING_NS_FIELD_NUMBER: _ClassVar[int]
    ONSETS_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    STREAM_TIME_S_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_SEQ_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    RETRACTED_ONSETS_S_FIELD_NUMBER: _ClassVar[int]
    seq: int
    capture_t_ns: int
    server_processing_ns: int
    onsets: _containers.RepeatedCompositeFieldContainer[OnsetEvent]
    features: FeatureFrames
    notes: _containers.RepeatedCompositeFieldContainer[NoteEvent]
    stream_time_s: float
    checkpoint_seq: int
    replayed: bool
    retracted_onsets_s: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, seq: _Optional[int] = ..., capture_t_ns: _Optional[int] = ..., server_processing_ns: _Optional[int] = ..., onsets: _Optional[_Iterable[_Union[OnsetEvent, _Mapping]]] = ..., features: _Optional[_Union[FeatureFrames, _Mapping]] = ..., notes: _Optional[_Iterable[_Union[NoteEvent, _Mapping]]] = ..., stream_time_s: _Optional[float] = ..., checkpoint_seq: _Optional[int] = ..., replayed: _Optional[bool] = ..., retracted_onsets_s: _Optional[_Iterable[float]] = ...) -> None: ...

class StreamWarning(_message.Message):
    __slots__ = ("code", "message", "seq")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    code: WarningCode
    message: str
    seq: int
    def __init__(self, code: _Optional[_Union[WarningCode, str]] = ..., message: _Optional[str] = ..., seq: _Optional[int] = ...) -> None: ...

class StreamSummary(_message.Message):
    __slots__ = ("session_id", "chunks_processed", "chunks_dropped", "chunks_lost", "onsets", "notes", "stream_time_s", "chunks_malformed", "final_notes")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_PROCESSED_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_DROPPED_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_LOST_FIELD_NUMBER: _ClassVar[int]
    ONSETS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    STREAM_TIME_S_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_MALFORMED_FIELD_NUMBER: _ClassVar[int]
    FINAL_NOTES_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    chunks_processed: int
    chunks_dropped: int
    chunks_lost: int
    onsets: int
    notes: int
    stream_time_s: float
    chunks_malformed: int
    final_notes: _containers.RepeatedCompositeFieldContainer[NoteEvent]
    def __init__(self, session_id: _Optional[str] = ..., chunks_processed: _Optional[int] = ..., chunks_dropped: _Optional[int] = ..., chunks_lost: _Optional[int] = ..., onsets: _Optional[int] = ..., notes: _Optional[int] = ..., stream_time_s: _Optional[float] = ..., chunks_malformed: _Optional[int] = ..., final_notes: _Optional[_Iterable[_Union[NoteEvent, _Mapping]]] = ...) -> None: ...

class AnalyzeResponse(_message.Message):
    __slots__ = ("started", "result", "warning", "summary", "flow")
    STARTED_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    WARNING_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    FLOW_FIELD_NUMBER: _ClassVar[int]
    started: StreamStarted
    result: ChunkResult
    warning: StreamWarning
    summary: StreamSummary
    flow: FlowControl
    def __init__(self, started: _Optional[_Union[StreamStarted, _Mapping]] = ..., result: _Optional[_Union[ChunkResult, _Mapping]] = ..., warning: _Optional[_Union[StreamWarning, _Mapping]] = ..., summary: _Optional[_Union[StreamSummary, _Mapping]] = ..., flow: _Optional[_Union[FlowControl, _Mapping]] = ...) -> None: ...

class FlowControl(_message.Message):
    __slots__ = ("advice", "suggested_chunk_frames", "credit_chunks", "queue_delay_ms")
    class Advice(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        ADVICE_UNSPECIFIED: _ClassVar[FlowControl.Advice]
        ADVICE_OK: _ClassVar[FlowControl.Advice]
        ADVICE_COARSEN: _ClassVar[FlowControl.Advice]
    ADVICE_UNSPECIFIED: FlowControl.Advice
    ADVICE_OK: FlowControl.Advice
    ADVICE_COARSEN: FlowControl.Advice
    ADVICE_FIELD_NUMBER: _ClassVar[int]
    SUGGESTED_CHUNK_FRAMES_FIELD_NUMBER: _ClassVar[int]
    CREDIT_CHUNKS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    advice: FlowControl.Advice
    suggested_chunk_frames: int
    credit_chunks: int
    queue_delay_ms: float
    def __init__(self, advice: _Optional[_Union[FlowControl.Advice, str]] = ..., suggested_chunk_frames: _Optional[int] = ..., credit_chunks: _Optional[int] = ..., queue_delay_ms: _Optional[float] = ...) -> None: ...

class GetSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class GetSessionResponse(_message.Message):
    __slots__ = ("session_id", "active", "summary", "onsets", "notes", "onsets_truncated")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    ONSETS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    ONSETS_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    active: bool
    summary: StreamSummary
    onsets: _containers.RepeatedCompositeFieldContainer[OnsetEvent]
    notes: _containers.RepeatedCompositeFieldContainer[NoteEvent]
    onsets_truncated: int
    def __init__(self, session_id: _Optional[str] = ..., active: _Optional[bool] = ..., summary: _Optional[_Union[StreamSummary, _Mapping]] = ..., onsets: _Optional[_Iterable[_Union[OnsetEvent, _Mapping]]] = ..., notes: _Optional[_Iterable[_Union[NoteEvent, _Mapping]]] = ..., onsets_truncated: _Optional[int] = ...) -> None: ...
