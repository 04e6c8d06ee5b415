"""Check: an exported GGUF runs in llama.cpp (through llama-cpp-python) and answers like the merged HF model.

llama-cpp-python has no wheel on the package registry here; it compiles llama.cpp from source (about
15 minutes on 2 cores), so this check lives outside `make test`:

    python -m venv /tmp/lcpp && /tmp/lcpp/bin/pip install llama-cpp-python
    .venv/bin/tunesmith export runs/quickstart-pcm-sentiment --to gguf
    .venv/bin/tunesmith export runs/quickstart-pcm-sentiment --to hf --dtype float32
    /tmp/lcpp/bin/python bench/gguf_llamacpp.py runs/quickstart-pcm-sentiment/export  # in llama.cpp's venv
    .venv/bin/python bench/gguf_llamacpp.py runs/quickstart-pcm-sentiment/export --hf  # the HF side

With llama-cpp-python 0.3.36 built here (with or without AMX), every quantized file, llama.cpp's own
Q4_1 SmolLM2 and llama.cpp's own q8_0 quantisation included, crashes (SIGSEGV) when a forward takes
more than one token; ``--one-by-one`` feeds the prompt a token at a time, which runs.

Each side prints the greedy token ids of the same chat prompts (prompt tokens as each side's tokenizer
makes them, then up to 24 generated tokens); run both and compare, or pass ``--compare A.json B.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

PROMPTS = [
    "Classify the sentiment of this tweet as positive, negative or neutral.\nTweet: this government no dey try at all",
    "Classify the sentiment of this tweet as positive, negative or neutral.\nTweet: i love this song die",
    "How market dey today?",
    "Ẹ kú àárọ̀. Báwo ni?",
]
NEW = 24


def hf_side(export: Path, gguf_quant: str | None = None) -> dict:
    """Greedy tokens of the merged HF export, or (``gguf_quant``) of that GGUF file as transformers reads it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(export / "hf").eval()
    if gguf_quant:
        name = next((export / "gguf").glob(f"*.{gguf_quant}.gguf")).name
        model = AutoModelForCausalLM.from_pretrained(export / "gguf", gguf_file=name).eval()
    tokenizer = AutoTokenizer.from_pretrained(export / "hf")
    out = {}
    for prompt in PROMPTS:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            gen = model.generate(ids, max_new_tokens=NEW, do_sample=False)[0, ids.shape[1] :].tolist()
        out[prompt] = {"prompt": ids[0].tolist(), "answer": gen}
    return out


def llamacpp_side(export: Path, quant: str, one_by_one: bool = False) -> dict:
    from llama_cpp import Llama

    path = next((export / "gguf").glob(f"*.{quant}.gguf"))
    llm = Llama(model_path=str(path), n_ctx=512, verbose=False, n_threads=2)
    template_text = llm.metadata.get("tokenizer.chat_template", "")
    from jinja2 import Template

    eot = int(llm.metadata.get("tokenizer.ggml.eot_token_id", llm.token_eos()))
    stops = {llm.token_eos(), eot}
    out = {}
    for prompt in PROMPTS:
        text = Template(template_text).render(
            messages=[{"role": "user", "content": prompt}], add_generation_prompt=True
        )
        ids = llm.tokenize(text.encode(), add_bos=False, special=True)
        gen: list[int] = []
        if one_by_one:  # one token per forward: see the module docstring
            for token in ids:
                llm.eval([token])
            while len(gen) < NEW and (not gen or gen[-1] not in stops):
                gen.append(int(llm.sample(temp=0.0, top_k=1)))
                llm.eval([gen[-1]])
        else:
            for token in llm.generate(ids, temp=0.0, top_k=1, top_p=1.0, repeat_penalty=1.0):
                gen.append(int(token))
                if token in stops or len(gen) >= NEW:
                    break
        llm.reset()
        out[prompt] = {"prompt": list(ids), "answer": gen}
    return out


def compare(a: dict, b: dict) -> None:
    for prompt in PROMPTS:
        x, y = a[prompt], b[prompt]
        same = next(
            (i for i, (s, t) in enumerate(zip(x["answer"], y["answer"], strict=False)) if s != t),
            min(len(x["answer"]), len(y["answer"])),
        )
        print(
            f"prompt tokens equal: {x['prompt'] == y['prompt']}; answer tokens equal for the first {same} of "
            f"{len(x['answer'])}/{len(y['answer'])}; both end the same: {x['answer'][-1:] == y['answer'][-1:]}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("export", type=Path, nargs="?")
    parser.add_argument("--hf", action="store_true", help="the HF side (tunesmith's venv)")
    parser.add_argument("--quant", default="f16")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--compare", nargs=2, type=Path)
    parser.add_argument("--hf-from-gguf", metavar="QUANT", help="HF side: read the GGUF file with transformers")
    parser.add_argument("--one-by-one", action="store_true", help="feed tokens singly (quantized files, see above)")
    args = parser.parse_args()
    if args.compare:
        compare(*(json.loads(p.read_text()) for p in args.compare))
        return
    result = (
        hf_side(args.export, args.hf_from_gguf) if args.hf else llamacpp_side(args.export, args.quant, args.one_by_one)
    )
    text = json.dumps(result, ensure_ascii=False)
    if args.out:
        args.out.write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    sys.exit(main())
