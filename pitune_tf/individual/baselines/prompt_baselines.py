"""The LLM-based Table 2 baselines that read events as text prompts: TallRec, P5 and
InstructRec, as the individual-stage methods ``tallrec``, ``p5`` and ``instructrec``.

Shared by the three (:class:`PromptBaseline`), and adapted: no pretrained tokenizer or LM is
reachable here, so the prompts are word-level (:class:`~pitune_tf.individual.baselines.prompt_tokenizer.PromptTokenizer`, a vocabulary built
from the run's own vocabularies: event and location names, weekday names, slot times and
the intents' names) and the LM is a random GPT2 (``prompt_backbone``,
``random:<layers>x<width>``), trained first on the population pool's prompts (the cloud),
then tuned per user with the engine's early stopping. The answer is the intent's word, scored
by the LM head at the prompt's end (:class:`PromptIntentNetwork`): generation restricted to
the candidate intents. Tables and figures of these three carry that their LM is random.
"""

from __future__ import annotations

from pitune_tf.individual.baselines.lora_adapters import AdapterOnly, add_lora
from pitune_tf.individual.baselines.population_baseline import PopulationBaseline
from pitune_tf.individual.baselines.prompt_network import PromptIntentNetwork


class PromptBaseline(PopulationBaseline):
    """A prompt baseline: its ``template`` (a key of ``TEMPLATES``), the GPT2 fully tuned per
    user unless ``lora`` (LoRA adapters only)."""

    template = ""
    lora = False

    def build_network(self):
        return PromptIntentNetwork.from_vocabularies(
            self.run.vocabs, self.template, int(self.run.config.history),
            backbone=self.config.prompt_backbone, name=self.template)

    def tuned_network(self, network):
        if not self.lora:
            return network
        adapters = add_lora(network.gpt2.transformer, self.config.lora_rank, self.config.lora_alpha,
                            seed=self.config.seed)
        return AdapterOnly(network, adapters, name=f"{self.template}_lora")

    def __call__(self, engine, user, sets):
        scores, info = super().__call__(engine, user, sets)
        info["prompt_tokens"] = int(self.tokenizer().length)
        return scores, info

    def tokenizer(self):
        network = self.backend().network
        return getattr(network, "network", network).tokenizer


class TallRec(PromptBaseline):
    """TALLRec (Bao, Zhang, Zhang, Wang, Feng, He, "TALLRec: An Effective and Efficient
    Tuning Framework to Align Large Language Model with Recommendation", RecSys 2023,
    PITuning's reference [2]).

    Kept: the recommendation data structured as instructions (an instruction, the user's
    history as input, the answer as output: ``TEMPLATES["tallrec"]``) and lightweight tuning
    of the LM with LoRA (per user, only the adapters of every block's attention projection
    are trained). Adapted: the answer is the next intent among all intents (TALLRec answers
    Yes / No for one candidate item), the LM is a random GPT2 pre-tuned on the population's
    instructions (TALLRec's LLaMA is pretrained), see the module docstring."""

    template = "tallrec"
    lora = True


class P5(PromptBaseline):
    """P5 (Geng, Liu, Fu, Ge, Zhang, "Recommendation as Language Processing (RLP): A Unified
    Pretrain, Personalized Prompt & Predict Paradigm (P5)", RecSys 2022, PITuning's
    reference [7]).

    Kept: the sequential-recommendation task as a text-to-text prompt of the user's item
    (event) history (``TEMPLATES["p5"]``), one LM pretrained on the population's prompts.
    Adapted: one task and prompt (P5 pretrains on a family of prompts and tasks), no user-id
    tokens (the individual users are new to the population), the answer is the intent's word
    scored at the prompt's end, the LM is a random GPT2, and the whole LM is fine-tuned per
    user (P5 is evaluated without per-user tuning); see the module docstring."""

    template = "p5"


class InstructRec(PromptBaseline):
    """InstructRec (Zhang, Xie, Hou, Zhao, Lin, Wen, "Recommendation as Instruction
    Following: A Large Language Model Empowered Recommendation Approach", arXiv 2305.07001,
    PITuning's reference [53]).

    Kept: the user's needs expressed as a natural-language instruction that carries the
    user's recent behaviour and context (``TEMPLATES["instructrec"]``: the recent events
    with their places and times, and "now it is <weekday> <time> at <place>"), the LM
    instruction-tuned on the population's instructions, then per user. Adapted: one
    instruction template (InstructRec generates many with an LLM and covers preference,
    intention and task forms), the answer is the intent's word, the LM is a random GPT2;
    see the module docstring."""

    template = "instructrec"
