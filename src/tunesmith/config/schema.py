"""The run config: one pydantic schema with a section per stage.

Every field carries a description (``tunesmith config show`` prints them) and unknown keys are errors
(``extra="forbid"``); :mod:`tunesmith.config.load` turns pydantic's errors into messages that name the
key, where it is, and the closest valid key.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from tunesmith.config.data import (  # noqa: F401  (re-exported: the data section lives beside its peers)
    CleanConfig,
    DataConfig,
    LanguageConfig,
    ReplayConfig,
    SplitConfig,
    TaskConfig,
    check_objective_kind,
    converted_kind,
)
from tunesmith.config.eval import EvalConfig
from tunesmith.config.hpo import HpoConfig
from tunesmith.config.monitor import DriftThresholds
from tunesmith.config.section import Section
from tunesmith.train.ppo.config import PPOConfig
from tunesmith.train.preference.config import PreferenceConfig
from tunesmith.train.reward.config import RewardConfig

# ---------------------------------------------------------------- stage 1: data (config/data.py)

# ---------------------------------------------------------------- stage 2: model and method


class ModelConfig(Section):
    """Stage 2: the base model."""

    base: str = Field(
        "smollm2-135m-instruct",
        description="An embedded model name (see `tunesmith models`), a local HF model dir, a .gguf file, "
        "or a hub id (needs network).",
    )
    gguf_file: str | None = Field(None, description="File name inside `base` when it is a dir holding a GGUF.")
    chat_template: str | None = Field(
        None, description="Override the tokenizer's chat template with this Jinja file (path)."
    )
    trust_pickle: bool = Field(
        False,
        description="Load a base model whose weights are pickle files (pytorch_model.bin), which can run code "
        "when loaded. Off: only safetensors and GGUF weights load; set it only for a source you trust.",
    )
    trust_remote_code: bool = Field(
        False,
        description="Load a model whose config.json names its own Python modelling code (auto_map), which then "
        "runs on this machine (transformers' trust_remote_code). Off: such folders are refused; set it only "
        "after reading that code.",
    )
    new_tokens: int = Field(
        0,
        ge=0,
        description="Vocabulary extension (0: off): learn up to this many whole words from the training split that "
        "the tokenizer splits into 3+ pieces, add them as tokens (each new embedding row starts as the mean of its "
        "old pieces' rows) and train the new rows. Fewer tokens per word; see <run>/data/vocab.json. Needs a BPE "
        "tokenizer, train.objective sft or cpt, and method lora, dora or full.",
    )
    new_tokens_min_count: int = Field(
        5, ge=1, description="Learn only words seen at least this often (a rarer word's new row has too few uses)."
    )


class LoraMethod(Section):
    """Low-rank adapters (Hu et al. 2021) through PEFT."""

    name: Literal["lora"] = "lora"
    r: int = Field(16, ge=1, description="Rank of the update matrices.")
    alpha: float = Field(32, gt=0, description="Scaling numerator: the update is scaled by alpha / r.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the adapter input.")
    targets: str | list[str] = Field(
        "all-linear", description="'all-linear' or a list of module names (q_proj, v_proj, ...)."
    )
    last_n_layers: int | None = Field(
        None,
        ge=1,
        description="Put adapters only in the last N transformer blocks (null: all). Backward then stops at "
        "the first adapted block, so a step costs far less; the classic 'tune the top layers' with LoRA.",
    )
    rslora: bool = Field(
        False, description="Rank-stabilised scaling alpha / sqrt(r) instead of alpha / r (Kalajdzievski 2023)."
    )
    loraplus_ratio: float | None = Field(
        None,
        gt=0,
        description="LoRA+ (Hayou et al. 2024): the B matrices learn at train.lr x this ratio (the paper uses 16).",
    )


class DoraMethod(LoraMethod):
    """Weight-decomposed LoRA (Liu et al. 2024): LoRA on the direction, a trained magnitude per output."""

    name: Literal["dora"] = "dora"  # type: ignore[assignment]


class Ia3Method(Section):
    """IA3 (Liu et al. 2022): learned vectors that rescale keys, values and the feed-forward activations."""

    name: Literal["ia3"] = "ia3"
    targets: list[str] | None = Field(
        None, description="Modules to rescale (null: PEFT's default for the architecture, e.g. k, v, down_proj)."
    )
    feedforward: list[str] | None = Field(
        None, description="Which of the targets are feed-forward (rescaled on their input; null: PEFT's default)."
    )


class QloraMethod(LoraMethod):
    """LoRA on a base whose linear layers are quantized by bitsandbytes (Dettmers et al. 2023, arXiv:2305.14314).

    4-bit NF4 (or FP4) or 8-bit (LLM.int8) weights for every linear layer inside the transformer blocks; the
    embeddings, norms and head keep their precision. Runs on CUDA and on CPU (bitsandbytes' CPU backend).
    """

    name: Literal["qlora"] = "qlora"  # type: ignore[assignment]
    bits: Literal[4, 8] = Field(4, description="Bits per frozen base weight: 4 (NF4/FP4) or 8 (LLM.int8).")
    quant_type: Literal["nf4", "fp4"] = Field("nf4", description="4-bit data type (ignored for 8 bits).")
    double_quant: bool = Field(
        True, description="Quantize the 4-bit blocks' scales too (about 0.4 bits per weight saved)."
    )


class FullMethod(Section):
    """Every parameter trains."""

    name: Literal["full"] = "full"


class FreezeMethod(Section):
    """Train only the last N transformer blocks (and the final norm); everything else is frozen."""

    name: Literal["freeze"] = "freeze"
    last_n_layers: int = Field(2, ge=0, description="How many of the last blocks train (0: only `modules`).")
    train_head: bool = Field(False, description="Also train the LM head / tied embeddings (large for big vocabs).")
    modules: list[str] = Field(
        default_factory=list,
        description="Also train these modules, by name or name suffix (e.g. ['norm', 'embed_tokens'] or "
        "['layers.0.mlp']); every parameter inside a matching module trains.",
    )


class PromptMethod(Section):
    """Prompt tuning (Lester et al. 2021): trained virtual-token embeddings in front of each example."""

    name: Literal["prompt"] = "prompt"
    virtual_tokens: int = Field(20, ge=1, description="How many virtual tokens to prepend.")
    init_text: str | None = Field(
        None,
        description="Initialise the virtual tokens from this text's embeddings (e.g. 'Classify the sentiment "
        "of this tweet:'); null: random. Recommended for small models.",
    )


class PrefixMethod(Section):
    """Prefix tuning (Li & Liang 2021): trained keys and values in front of every layer."""

    name: Literal["prefix"] = "prefix"
    virtual_tokens: int = Field(20, ge=1, description="Prefix length in every layer.")
    projection: bool = Field(False, description="Train the prefix through a two-layer MLP (reparameterisation).")
    projection_hidden: int = Field(256, ge=1, description="Hidden width of that MLP.")


class PtuningMethod(Section):
    """P-tuning (Liu et al. 2021): virtual tokens generated by a small trained prompt encoder."""

    name: Literal["ptuning"] = "ptuning"
    virtual_tokens: int = Field(20, ge=1, description="How many virtual tokens to prepend.")
    encoder: Literal["mlp", "lstm"] = Field("mlp", description="The prompt encoder.")
    encoder_hidden: int = Field(128, ge=1, description="Hidden width of the prompt encoder.")


class BottleneckMethod(Section):
    """Bottleneck adapters (Houlsby et al. 2019; Pfeiffer et al. 2021) after each block's sub-layers."""

    name: Literal["adapters"] = "adapters"
    placement: Literal["houlsby", "pfeiffer"] = Field(
        "houlsby",
        description="'houlsby': after the attention output and the feed-forward output of every block; "
        "'pfeiffer': after the feed-forward output only (half the parameters).",
    )
    size: int = Field(64, ge=1, description="Bottleneck width (the hidden size is reduced to this).")
    activation: Literal["relu", "gelu", "silu"] = Field("relu", description="Non-linearity inside the bottleneck.")


class FewshotMethod(Section):
    """No training: k solved training examples go in front of each query (in-context learning)."""

    name: Literal["fewshot"] = "fewshot"
    k: int = Field(4, ge=1, description="Demonstrations per query.")
    select: Literal["balanced", "similar"] = Field(
        "balanced",
        description="'balanced': the same k examples for every query, round-robin over the labels (seeded); "
        "'similar': per query, the k training examples nearest to it by sentence embedding.",
    )
    encoder: str = Field(
        "all-minilm-l6-v2", description="Sentence encoder for select: similar (embedded name or local dir)."
    )


PROMPT_LEARNING = ("prompt", "prefix", "ptuning")
VOCAB_METHODS = ("lora", "dora", "full")  # the methods that can train new embedding rows (model.new_tokens)

MethodConfig = Annotated[
    LoraMethod
    | DoraMethod
    | QloraMethod
    | Ia3Method
    | PromptMethod
    | PrefixMethod
    | PtuningMethod
    | BottleneckMethod
    | FewshotMethod
    | FullMethod
    | FreezeMethod,
    Field(discriminator="name"),
]


# ---------------------------------------------------------------- stages 3-4: environment and training


PREFERENCE_OBJECTIVES = ("reward", "dpo", "orpo", "kto")


class TrainConfig(Section):
    """Stages 3-4: environment and the training loop."""

    objective: Literal["sft", "cpt", "classify", "reward", "dpo", "orpo", "kto", "ppo"] = Field(
        "sft",
        description="'sft': supervised / instruction tuning on prompt-completion pairs; 'cpt': continued "
        "pre-training on raw text (data.format: text), every token a label; 'classify': a new classification "
        "head on an encoder (e.g. all-minilm-l6-v2) or a causal LM, trained with cross-entropy; 'reward': a "
        "scalar reward head on pairs, rankings or ratings; 'dpo' (loss types sigmoid, ipo, hinge, simpo) and "
        "'orpo' on preference pairs; 'kto' on unpaired good/bad answers (or pairs, split); 'ppo': RLHF on the "
        "data's prompts against train.ppo.reward (a reward or classify run, or a function).",
    )
    preference: PreferenceConfig = Field(
        default_factory=PreferenceConfig, description="Settings of the dpo, orpo and kto objectives."
    )
    reward: RewardConfig = Field(default_factory=RewardConfig, description="Settings of the reward objective.")
    ppo: PPOConfig = Field(default_factory=PPOConfig, description="Settings of the ppo objective.")
    epochs: float = Field(1.0, gt=0, description="Passes over the training split (fractions allowed).")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimizer steps.")
    lr: float = Field(2e-4, gt=0, description="Peak learning rate.")
    optimizer: Literal["adamw", "adamw8bit", "paged_adamw", "paged_adamw8bit"] = Field(
        "adamw",
        description="'adamw' (torch); 'adamw8bit' keeps both moments in 8 bits (bitsandbytes, CPU or CUDA; "
        "a quarter of the state memory); 'paged_*' page the state to host memory under CUDA memory pressure "
        "(CUDA only; on CPU they run unpaged and the run records that).",
    )
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay (never applied to norms and biases).")
    scheduler: Literal["cosine", "linear", "constant"] = Field("cosine", description="LR schedule after warmup.")
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="Fraction of steps spent warming up.")
    batch_tokens: int = Field(4096, ge=16, description="Token budget of one micro-batch (padding included).")
    max_batch_size: int = Field(64, ge=1, description="Most examples in one micro-batch (or packed row).")
    packing: bool = Field(
        False,
        description="Padding-free packing: a micro-batch is one row of up to batch_tokens tokens holding whole "
        "examples back to back, with attention run per example (never across) and positions restarting.",
    )
    group_by_length: bool = Field(
        True,
        description="Padded batches (packing off): batch examples of similar length together so little padding "
        "is computed. Off: batches cut from the shuffled order as they come, as a plain data loader would.",
    )
    grad_accum: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    max_length: int = Field(512, ge=8, description="Examples longer than this (in tokens) are rejected.")
    loss_on: Literal["completion", "last_turn", "all"] = Field(
        "completion",
        description="Where the loss is taken: 'completion' on every assistant answer (all turns of a chat), "
        "'last_turn' on a chat's final answer only, 'all' on every token.",
    )
    class_weights: Literal["none", "balanced"] = Field(
        "none",
        description="'balanced' weights each classification example by N / (classes x count of its label), so "
        "rare labels are not drowned by the majority (macro-F1 rewards this); validation uses the same weights.",
    )
    release_memory: bool = Field(
        False,
        description="CPU, Linux: give freed blocks of 1 MB and more straight back to the OS (glibc mmap "
        "threshold). Peak RSS of SmolLM2 LoRA training drops ~25% (2.35 -> 1.80 GB) but steps run ~30% slower "
        "(page faults); for when memory, not time, is the limit.",
    )
    bf16_frozen_base: bool = Field(
        True,
        description="With bf16 precision and an adapter method (lora), store the frozen base weights in bf16: "
        "autocast casts them to bf16 for every matmul anyway, so losses match while memory drops ~20%.",
    )
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="'auto' uses bf16 autocast where the hardware runs it fast (AMX CPUs, CUDA), else fp32."
    )
    gradient_checkpointing: bool = Field(
        False,
        description="Recompute each block's activations in backward instead of keeping them: far less memory "
        "for about a third more compute.",
    )
    kernels: Literal["torch", "liger"] = Field(
        "torch",
        description="'liger': Liger Kernel's Triton kernels for RMSNorm, SwiGLU and RoPE (CUDA, Llama-family "
        "models; pip install 'tunesmith[liger]'). 'torch': transformers' own modules.",
    )
    compile: bool = Field(
        False,
        description="torch.compile each transformer block (dynamic shapes, so rows of any length reuse one "
        "graph; packed attention stays eager). Fuses norms, activations and adapter arithmetic: SmolLM2 LoRA "
        "steps on a 2-core CPU ran 1.2-1.4x faster with 16-24% less peak memory, after 10-40 s of compiling in "
        "the first steps. Needs a C++ compiler on the CPU (Triton on CUDA).",
    )
    clip_grad: float | None = Field(1.0, gt=0, description="Max gradient norm; null disables clipping.")
    l2sp: float = Field(
        0.0,
        ge=0,
        description="Strength of an L2 pull toward the pretrained weights (L2-SP), against catastrophic "
        "forgetting in full and freeze tuning (0: off). LoRA starts at the base model; use weight_decay there.",
    )
    eval_every: int = Field(0, ge=0, description="Validate every N optimizer steps (0: once per epoch).")
    early_stopping: int = Field(
        0, ge=0, description="Stop after this many validations without a lower validation loss (0: never)."
    )
    save_every: int = Field(0, ge=0, description="Checkpoint every N optimizer steps (0: once per epoch).")
    keep_last: int = Field(2, ge=1, description="Checkpoints kept besides the best.")
    threads: int | None = Field(None, ge=1, description="CPU threads for torch (default: all cores).")
    log_every: int = Field(5, ge=1, description="Write metrics every N optimizer steps.")


# ---------------------------------------------------------------- stage 5: evaluation (config/eval.py)


# ---------------------------------------------------------------- the whole run


class ExportConfig(Section):
    """Stage 6 inside ``tunesmith run``: exports written to ``runs/<name>/export/<to>/`` after evaluation."""

    to: list[Literal["hf", "gguf", "adapter"]] = Field(
        default_factory=list, description="Formats to export after evaluation (none: run stops after stage 5)."
    )
    quant: list[Literal["f32", "f16", "bf16", "q8_0"]] = Field(
        ["f16", "q8_0"], min_length=1, description="GGUF tensor types, one file each."
    )
    ollama: bool = Field(False, description="GGUF: also write an Ollama Modelfile.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field("auto", description="hf: weight dtype.")


class MonitorConfig(Section):
    """Stage 7: when traffic counts as drifted and feedback calls for retraining."""

    thresholds: DriftThresholds = Field(default_factory=DriftThresholds, description="Drift alert thresholds.")
    negative_feedback_rate: float = Field(
        0.3, ge=0, le=1, description="Recommend retraining when a model's share of thumbs-down exceeds this."
    )
    min_thumbs: int = Field(20, ge=1, description="...but only once it has at least this many thumbs.")


class RunConfig(Section):
    """A whole run: stages 1-5 (and 6 when ``export.to`` is set), recorded in runs/<name>/."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="Run name; the run dir is named so.")
    seed: int = Field(0, description="Seed for splits, sampling, initialisation and data order.")
    output_dir: str = Field("runs", description="Parent folder of run directories.")
    data: DataConfig = Field(..., description="Stage 1: dataset preparation.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="Stage 2: base model.")
    method: MethodConfig = Field(default_factory=LoraMethod, description="Stage 2: tuning method.")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Stages 3-4: training.")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="Stage 5: evaluation.")
    export: ExportConfig = Field(default_factory=ExportConfig, description="Stage 6: exports after evaluation.")
    monitor: MonitorConfig = Field(default_factory=MonitorConfig, description="Stage 7: drift and feedback.")
    hpo: HpoConfig = Field(default_factory=HpoConfig, description="`tunesmith tune`: the hyperparameter search.")

    @field_validator("method", mode="before")
    @classmethod
    def _method_defaults_to_lora(cls, value: object) -> object:
        if isinstance(value, dict) and "name" not in value:
            return {"name": "lora", **value}
        return value

    @model_validator(mode="after")
    def _l2sp_needs_base_weights(self) -> RunConfig:
        if self.train.l2sp and self.method.name not in ("full", "freeze"):
            raise ValueError(
                "train.l2sp pulls trained base weights back toward their start: it applies to the "
                f"full and freeze methods; with {self.method.name} use train.weight_decay instead"
            )
        return self

    @model_validator(mode="before")
    @classmethod
    def _raw_text_defaults_to_cpt(cls, value: object) -> object:
        """``data.format: text`` with no objective named means continued pre-training, not SFT."""
        if isinstance(value, dict) and isinstance(value.get("data"), dict) and value["data"].get("format") == "text":
            train = value.get("train") or {}
            if isinstance(train, dict) and "objective" not in train:
                return {**value, "train": {**train, "objective": "cpt"}}
        return value

    def check_trainable(self) -> None:
        """Raise a ConfigError when ``train.objective`` cannot learn from the data's kind (checked by the
        commands that train, not at load: preparing and inspecting work on every kind)."""
        from tunesmith.errors import ConfigError

        try:
            check_objective_kind(self.train.objective, converted_kind(self.data.format, self.data.convert))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    @model_validator(mode="after")
    def _new_tokens_need_causal_lm(self) -> RunConfig:
        if self.model.new_tokens and (self.train.objective == "classify" or self.method.name not in VOCAB_METHODS):
            raise ValueError(
                "model.new_tokens adds tokens to a causal LM and trains their embedding rows: it works with "
                f"train.objective sft or cpt and method {', '.join(VOCAB_METHODS)} (not objective "
                f"{self.train.objective} with method {self.method.name}); or set model.new_tokens: 0"
            )
        return self

    @model_validator(mode="after")
    def _fewshot_needs_answers(self) -> RunConfig:
        if self.method.name == "fewshot" and (self.train.objective != "sft" or self.data.format == "text"):
            raise ValueError(
                "method fewshot puts solved examples in front of each query: it needs train.objective: sft "
                "and classification or instruction data"
            )
        return self

    @model_validator(mode="after")
    def _shot_baselines_need_answers(self) -> RunConfig:
        shots = [b for b in self.eval.baselines if b != "zero-shot"]
        kind = converted_kind(self.data.format, self.data.convert)
        if shots and (kind in ("text", "messages") or self.train.objective != "sft"):
            raise ValueError(
                f"eval.baselines {shots} put solved training examples in front of each query: they apply to "
                "sft on classification, instruction or prompt-completion data; keep eval.baselines: [zero-shot]"
            )
        return self

    @model_validator(mode="after")
    def _reference_is_reachable(self) -> RunConfig:
        self.train.preference.reference_source(self.train.objective, self.method.name)
        return self

    @model_validator(mode="after")
    def _ppo_needs_a_weight_method(self) -> RunConfig:
        if self.train.objective == "ppo" and (self.method.name in PROMPT_LEARNING or self.method.name == "fewshot"):
            raise ValueError(
                f"train.objective ppo samples and scores answers token by token; method {self.method.name} is not "
                "supported there: use lora (the default), dora, ia3, qlora, adapters, full or freeze"
            )
        if self.train.objective == "ppo" and self.train.packing:
            raise ValueError(
                "train.objective ppo trains on sampled answers, not packed rows: set train.packing: false"
            )
        return self

    @model_validator(mode="after")
    def _pairs_are_not_packed(self) -> RunConfig:
        if self.train.packing and self.train.objective in PREFERENCE_OBJECTIVES:
            raise ValueError(
                f"train.objective {self.train.objective} compares whole answers row by row, so examples cannot "
                "share a packed row: set train.packing: false"
            )
        return self

    @model_validator(mode="after")
    def _prompt_learning_cannot_pack(self) -> RunConfig:
        if self.train.packing and self.method.name in PROMPT_LEARNING:
            raise ValueError(
                f"method {self.method.name} puts its virtual tokens in front of each example, so examples "
                "cannot share a packed row: set train.packing: false"
            )
        return self

    @model_validator(mode="after")
    def _groups_are_columns(self) -> RunConfig:
        unknown = [g for g in self.eval.groups if g not in self.data.groups]
        if unknown:
            raise ValueError(f"eval.groups {unknown} must also be listed in data.groups {self.data.groups}")
        return self
