"""Rule features and domain evidence, computed column-wise with Arrow string kernels.

There is one implementation, over a column: ``route()`` is a batch of one, so single and batch
routing cannot drift apart. Patterns are RE2 (Arrow's regex engine), matched case-insensitively.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# --- complexity evidence -------------------------------------------------------------------
CODE_BLOCK = r"```|\bdef \w+\(|\bfunction\s*\w*\s*\(|#include\s*<|\bpublic static\b|=>|\bconsole\.log\(|\bimport \w+|;\s*\n|\bSELECT\b.+\bFROM\b|\{\s*\n"
CODE_TERMS = (
    r"\b(python|javascript|typescript|java|golang|rust|kotlin|swift|php|ruby|bash|shell script|"
    r"sql|regex|api|endpoint|function|method|class|compile[rs]?|debug|bug|stack ?trace|exception|"
    r"segfault|null ?pointer|refactor|unit tests?|dockerfile|kubernetes|react|django|flask|pandas|numpy|"
    r"git|json|yaml|script|algorithm|runtime error|syntax error|code|css|html|div|hash ?maps?|hash ?tables?|"
    r"arrays?|linked lists?|data structures?|recursion|compiler|variable|loop|npm|pip|traceback|"
    r"databases?|dataframes?|groupby|dtypes?|csv|matplotlib|scikit-learn|sklearn|scipy|pytorch|"
    r"tensorflow|keras|matlab|mysql|postgresql|sqlite|mongodb|regular expressions?)\b|"
    r"\bc(\+\+|#)"  # outside the \b...\b group: "c++ " has no word boundary after the "+"
)
MATH = (
    r"\$[^$]+\$|\\frac|\\sum|\\int|\\sqrt|\b\d+\s*[\^*/=+-]\s*\d|\b[a-z]\s*\^\s*\d|"
    r"\b(integral|derivative|differentiate|integrate|equation|theorem|lemma|matrix|matrices|eigen\w*|"
    r"probability|solve for|polynomial|primes?|integers?|divisible|divisors?|modulo|factorial|"
    r"sum of|how many ways|combinatori\w*|logarithm|trigonometr\w*|geometry|triangle|circle|radius|"
    r"remainder|digits?|real roots?|inequality|sequence|series|limit of|vector space|percent|average)\b"
)
QUESTION = r"\?"
ENUMERATION = r"(^|\n)\s*(\d+[.)]|[-*•])\s+|\b(first(ly)?|second(ly)?|then|finally|next|also|additionally|step[- ]by[- ]step|part \(?[a-d]\)?)\b"
CONSTRAINTS = r"\b(must|should|without|at most|at least|no more than|within|only|ensure|requirements?|constraints?|limit(ed)?|budget|deadline|exactly|guarantee[sd]?)\b"
DEPTH = (
    r"\b(explain why|why does|trade-?offs?|compare|comparison|analy[sz]e|analysis|design|architect\w*|"
    r"optimi[sz]e|evaluate|derive|derivation|justify|in depth|in detail|detailed|comprehensive|"
    r"step[- ]by[- ]step|pros and cons|implications|critique|strategy|plan for|implement)\b"
)
EXPERT = (
    r"\b(prove|proof|formally|formal verification|rigorous(ly)?|theorem|lemma|distributed|"
    r"fault[- ]tolerant|scalab\w*|exactly[- ]once|consensus|linearizab\w*|research|novel|"
    r"state[- ]of[- ]the[- ]art|asymptotic|multi[- ]region|million (requests|users)|high availability|"
    r"all (functions|integers|real)|for all|if and only if|iff|competition|olympiad|complexity class|"
    r"np[- ]hard|eigendecomposition|stochastic|bayesian|sharding|replication)\b"
)
TRIVIAL = (
    r"^\s*(hi|hello|hey|yo|thanks|thank you|thx|ok(ay)?|cool|nice|great|lol|haha|good (morning|night|"
    r"evening|afternoon)|bye|goodbye|see you|how are you|what'?s up|sup|tell me a joke|set (an? )?(alarm|"
    r"timer|reminder)|turn (on|off|up|down)|play|pause|resume|skip|stop|next song|remind me|call|text|"
    r"open|add .* to (my )?(list|cart|calendar)|volume|what time|what'?s the (time|weather|date)|"
    r"weather|who are you|are you)\b"
)
ARITHMETIC = (
    r"\d\s*(times|divided by|multiplied by|minus|plus|over|x|squared|cubed)\s*\d|\d\s*%|"
    r"\b(percent|percentage|sum|product|quotient|square root|average|mean|median)\b"
)
CODE_TASK = (
    r"\b(write|implement|create|build|code|convert|translate|refactor|debug|fix|optimi[sz]e|port|"
    r"rewrite)\b.{0,60}\b(function|class|script|program|regex|query|code|method|api|endpoint|"
    r"component|unit tests?|algorithm|module|cli|parser|decorator|hook)s?\b"
)
NUMBERS = r"\b\d+(?:[.,]\d+)?\b"
WORD_PROBLEM = r"\bhow (many|much|long|far|old)\b|\baltogether\b|\bin total\b|\beach\b|\bper (hour|day|week|month|year)\b|\btimes as (many|much)\b|\bhalf (as|of)\b|\btwice\b"
FORMAL = (
    r"\b(find (the|all) (number|sum|remainder|radius|value|smallest|largest|minimum|maximum|area|"
    r"probability)|how many (ordered|positive|distinct|integers|ways)|compute|such that|"
    r"integer coefficients|perfect square|relatively prime|let [a-z]\b|triangle [A-Z]{3}|"
    r"show that|prove that|deduce|if and only if|for every|for all|suppose that|without loss|"
    r"closed form|asymptotically|big-?o|o\(n( log n)?\)|exactly[- ]once|partition tolerance|"
    r"p99|sla|throughput|consistency|trade-?offs?)\b"
)
# Clinical vignettes and patient-facing medicine: ages, "presents with", vital signs, lab units,
# the questions case vignettes ask. Their numbers must not read as a maths word problem.
CLINICAL = (
    r"\b\d+[- ](year|month|week|day)s?[- ]old\b|\bpresents? (to|with)\b|\bis brought to\b|"
    r"\b(history of|physical exam\w*|on examination|vital signs|laboratory|serum|plasma|mm ?hg|"
    r"mg/dl|meq/l|mmol/l|/min|/mm3|emergency department|most likely (diagnosis|cause)|"
    r"next (best )?step|pathophysiolog\w*|biopsy|gestation|complains? of|auscultation|tenderness|"
    r"medical history|postoperative|mechanism of action|first-line|contraindicat\w*|"
    r"adverse effects?|prognosis|etiology|differential diagnosis)\b"
)
# Short quantitative science problems: a physical quantity with a science unit, scientific
# notation, a quantity physics and chemistry problems ask for, a geometry construction. Hard
# problems can be short and name no hard word ("calculate the de Broglie wavelength of an electron
# with 50 eV"). Single-letter units (V, N, K, J) and everyday units (minutes, meters, kg,
# degrees) are left out: voice commands and factoid questions use them ("set a timer for 10
# minutes"), as do image prompts ("8k") and answer options ("5\nC").
QUANTITATIVE = (
    r"\b\d(?:\.\d+)?[ ]?(?:x|\*|\\times)[ ]?10[ ]?\^[ ]?\{?[ ]?-?\d|\b\d(?:\.\d+)?e[-+]?\d+\b|"
    r"\b\d+(?:\.\d+)?[ ]?(?:[kmgn]?ev|kj|kv|mv|ma|hz|khz|mhz|ghz|kpa|pa|mol|nm|nc|ohms?|"
    r"m/s\^?2?|km/s|g/mol|atm|kelvin|joules?|volts?|newtons?|watts?|coulombs?|teslas?)(?:[^\w/]|$)|"
    r"\b(wavelength|kinetic energy|potential (energy|difference)|momentum|acceleration|velocity|"
    r"electric (field|potential|charge|current)|magnetic (field|flux)|capacitance|capacitor|"
    r"inductance|inductor|resistor|photons?|electrons?|protons?|torque|enthalpy|entropy|half-life|"
    r"molarity|de broglie|semicircle|tangent to|find the angle|measure of angle)\b"
)
FEATURE_SET = "rules/7"  # bump when a pattern or feature changes: fitted heads record it

PRIVACY = (
    r"\b\d{3}-\d{2}-\d{4}\b|[\w.+-]+@[\w-]+\.[\w.]+|\b(\+?\d{1,2}[ .-]?)?\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}\b|"
    r"\b(my (diagnosis|medical record|social security|ssn|passport|credit card|bank account)|"
    r"patient (name|id|record)|date of birth)\b"
)

# Biology/medicine evidence, one pattern (one kernel) in four parts. Generic medical vocabulary,
# not a source's words: consumer health questions name drugs, organs and symptoms; research
# questions ("Does X improve Y in patients with Z?") name patients, study designs and outcomes.
# Words common outside medicine are left out or only counted in a medical phrase ("blood test",
# not "blood"; "randomized trial", not "randomized"; no "injection", "tablet", "cohort", "depression").
BIO_TERMS = (
    r"genes?|genetic|genome|dna|rna|mrna|proteins?|enzymes?|cell|cells|cellular|mitosis|meiosis|"
    r"crispr|cas9|mutations?|cancers?|tumou?rs?|diseases?|symptoms?|diagnos\w*|treatments?|drugs?|"
    r"doses?|dosage|medications?|medicines?|medical|clinical|clinics?|clinicians?|patients?|"
    r"vaccin\w*|virus|bacteria|antibiotics?|immune|immuni[sz]\w*|insulin|diabet\w*|"
    r"blood (pressure|tests?|sugar|cells?|clots?|counts?|glucose|transfusions?|vessels?|levels?|"
    r"stream|work)|heart|kidneys?|liver|neurons?|brain|hormones?|pharmac\w*|molecular|biolog\w*|"
    r"organisms?|species|evolution|photosynthesis|metabolism|antibod\w*|p53|pathway|receptors?|"
    r"side effects?|krebs|atp|bacteri\w*|chest pain|artery|arteries|arterial|cholesterol|"
    r"infections?|infectious|contagious|syndromes?|allerg\w*|pregnan\w*|chromosome\w*|"
    r"brca\d?|nucleotide|amino acids?|cardiac|cardio\w+|coronary|renal|hepatic|thyroid|pulmonary|"
    r"respiratory|neurolog\w*|tissues?|nerves?|vitamins?|physicians?|doctors?|nurses?|nursing|"
    r"hospitals?|hospitali[sz]\w*|surgery|surgeries|surgical|surgeons?|pediatric\w*|paediatric\w*|"
    r"geriatric\w*|neonat\w*|edema|lesions?|biopsy|fever|nausea|vomiting|rash|chemotherapy|chemo|"
    r"radiotherapy|therapy|therapies|therapeutic|antiviral|pathogen\w*|microb\w*|physiolog\w*|"
    r"anatom\w*|epidemi\w*|disorders?|deficienc\w*|hereditary|inherited|congenital|chronic|"
    r"symptomatic|asymptomatic|remission|prescri(be|bed|bing|ption|ptions)|overdos\w*|pills?|meds|"
    r"transplant\w*|dialysis|anaesthe\w*|anesthe\w*"
)
BIO_BODY = (  # organs, conditions and the people and places of care
    r"bones?|skeletal|spinal|muscles?|lungs?|stomach|bowels?|intestin\w*|colorectal|"
    r"pancrea\w*|gastric|gastrointestinal|gastroenter\w*|bladder|urine|urinary|prostat\w*|"
    r"ovar(y|ies|ian)|uter(us|ine)|cervix|vagina\w*|testic\w*|ventric\w*|atrial|venous|aort\w*|"
    r"thrombo\w*|embol\w*|aneurysms?|retina\w*|cornea\w*|cataracts?|glaucoma|cartilage|tendons?|"
    r"ligaments?|fractures?|cerebr\w*|dementia|alzheimer\w*|parkinson\w*|autism|autistic|adhd|"
    r"epilep\w*|seizures?|migraines?|headaches?|asthma|obes(e|ity)|hypertensi\w*|hypotensi\w*|"
    r"arrhythmi\w*|fibrillation|hiv|covid\w*|influenza|flu|malaria|measles|mumps|shingles|"
    r"chicken ?pox|pneumonia|sepsis|septic|coughs?|coughing|wounds?|ulcers?|bleeding|insomnia|"
    r"schizophreni\w*|bipolar|depressive|antidepressants?|mental (illness|illnesses|disorders?)|"
    r"cysts?|hernias?|apnoea|apnea|acne|eczema|dental|dentists?|fetus|fetal|foetal|prenatal|"
    r"postnatal|postpartum|obstetric\w*|gyn(a)?ecolog\w*|menstrua\w*|menopaus\w*|estrogen|"
    r"oestrogen|testosterone|cortisol|glucose|lipids?|triglycerides?|steroids?|opioids?|opiates?|"
    r"analgesi\w*|anticoagul\w*|antihistamines?|inhibitors?|neoplas\w*|malignan\w*|metasta\w*|"
    r"oncolog\w*|benign|mortality|morbidity|prognos\w*|efficacy|efficacious|placebo\w*|"
    r"double[- ]blind|randomi[sz]ed (controlled|clinical|trials?)|case[- ]control|"
    r"meta[- ]analys[ie]s"
)
BIO_MORPHOLOGY = (  # disease, procedure and drug names by their endings
    r"\w{3,}(itis|osis|a?emia|pathy|plasia|trophy|ectomy|algia|oscopy|oscopic|plasty|ostomy|penia|"
    r"plegia|plegic|iasis|rrhoea|rrhea|rrhage|rrhoids|cytes?|cardia|"
    # drug stems (INN): lisinopril, metoprolol, atorvastatin, amoxicillin, imatinib, rituximab, ...
    r"mab|nib|pril|olol|statin|cillin|mycin|micin|azole|vir|sartan|dipine|tidine|tadine|oxacin|"
    r"cycline|parin|oxetine|azepam|azolam|triptan|lukast|gliptin|gliflozin|profen|caine|zepine|"
    r"pramine|dronate|olone|asone|semide|thiazide|terol|tropin|fenac|platin|rubicin|setron|afil)|"
    r"\w*(carcinoma|lymphoma|melanoma|sarcoma|glioma|blastoma|myeloma|adenoma|hematoma|haematoma|"
    r"fibroma|lipoma|meningioma|mesothelioma|angioma|neuroma|teratoma|granuloma)|"
    r"(laparo|tracheo|cranio|episio|thoraco|lobo|osteo)tomy|"
    r"(protein|hemat|haemat|glycos|dys|poly|albumin|bacteri|noct)uria|"
    r"(pneumon|dement|insomn|hypox|anorex|bulim|dysphag|aphas|atax|amblyop|myop|eclamps|dyslex)ia"
)
BIOLOGY = r"\b(" + BIO_TERMS + "|" + BIO_BODY + "|" + BIO_MORPHOLOGY + r")\b"

# --- domain evidence (explicit service intents first) ---------------------------------------
IMAGE_GEN_INTENT = (
    r"\b(generate|create|make|draw|paint|render|produce|design|sketch|illustrate)\s+(me\s+)?(an?\s+|the\s+|some\s+)?"
    r"([\w-]+\s+){0,3}(image|picture|photo|illustration|drawing|painting|logo|portrait|wallpaper|icon|"
    r"artwork|poster|sketch|avatar)s?\b|^\s*(draw|paint|sketch|illustrate)\b|\btext[- ]to[- ]image\b|"
    r"\b(midjourney|stable diffusion|dall-?e)\b"
)
SPEECH_INTENT = (
    r"\b(read|say|speak|narrate|recite|pronounce)\b.{0,80}\b(aloud|out loud)\b|\btext[- ]to[- ]speech\b|"
    r"\btts\b|\bspeech[- ]to[- ]text\b|\btranscribe\b|\btranscription\b|\bin an? \w+ voice\b|"
    r"\b(voice ?over|read (it|this|that) to me)\b|\b(convert|turn)\b.{0,40}\bto (speech|audio)\b"
)
# Robotics words and phrases that mean robotics work wherever they appear. The rest of the robotics
# pattern ("robot", "drone", "trajectory", "pid", "arduino", "degrees of freedom") also names toys,
# image subjects, grid puzzles and robots.txt: 26 of the 29 dev-corpus rows that hit it were no
# robotics task (Krea image prompts of robots, LeetCode robot puzzles, word problems about toy
# robots), and a puzzle names its robot many times, so a count of hits cannot tell them apart.
ROBOTICS_SPECIFIC = (
    r"\b(ros2?|gazebo|kinematics|lidar|slam|odometry|pid controller|actuators?|manipulators?|"
    r"end[- ]effectors?|motion planning|path planning|quadcopters?|urdf|moveit|6-dof|"
    r"robot(ic)? arms?|mobile robots?|industrial robots?|servos?|motor controllers?|waypoints?)\b"
)
# Domains whose keyword pattern mixes specific words with everyday ones: without a specific word
# the keywords are weak evidence (scoring: ``keyword_outranks``).
SPECIFIC_PATTERNS: dict[str, str] = {"robotics": ROBOTICS_SPECIFIC}
DOMAIN_PATTERNS: dict[str, str] = {
    "coding": CODE_TERMS + "|" + CODE_BLOCK,
    "math": MATH,
    "biology": BIOLOGY,
    "robotics": (
        r"\b(robot\w*|ros2?|gazebo|kinematics|inverse kinematics|actuator|servo|lidar|slam|odometry|"
        r"pid controller|pid|gripper|manipulator|end[- ]effector|motion planning|path planning|"
        r"trajectory|drone|quadcopter|urdf|moveit|arduino|motor controller|6-dof|degrees of freedom)\b"
    ),
    "vision": (
        r"\b(this (image|photo|picture|screenshot|diagram|chart)|in the (image|photo|picture)|"
        r"object detection|detect objects|segment\w*|bounding box|yolo\w*|ocr|image classification|"
        r"computer vision|opencv|convolutional|cnn|describe (this|the) (image|photo|picture)|"
        r"what('?s| is) in (this|the) (image|photo|picture)|camera feed|pixels?)\b"
    ),
    "agent_builder": (
        r"\b(build|create|set up|design|make) (me )?(an? )?(ai |autonomous |multi-?agent |llm )?"
        r"(agent|agents|assistant bot|chatbot|bot|workflow automation)\b|\bmulti-?agent\b|"
        r"\btool[- ]calling\b|\bfunction calling\b|\blangchain\b|\bautogen\b|\bcrewai\b|\bagentic\b"
    ),
}


@dataclass(frozen=True)
class RuleFeatures:
    """Per-row rule evidence (numpy arrays aligned with the input column)."""

    chars: np.ndarray
    words: np.ndarray
    code: np.ndarray
    math: np.ndarray
    questions: np.ndarray
    steps: np.ndarray
    constraints: np.ndarray
    depth: np.ndarray
    expert: np.ndarray
    trivial: np.ndarray
    numbers: np.ndarray
    word_problem: np.ndarray
    formal: np.ndarray
    arithmetic: np.ndarray
    code_task: np.ndarray
    clinical: np.ndarray
    quantitative: np.ndarray
    privacy: np.ndarray
    image_intent: np.ndarray
    speech_intent: np.ndarray
    domain_hits: dict[str, np.ndarray]


def _count(col: pa.Array, pattern: str) -> np.ndarray:
    return (
        pc.count_substring_regex(col, pattern, ignore_case=True)
        .fill_null(0)
        .to_numpy(zero_copy_only=False)
        .astype(np.float64)
    )


def _match(col: pa.Array, pattern: str) -> np.ndarray:
    return (
        pc.match_substring_regex(col, pattern, ignore_case=True)
        .fill_null(False)
        .to_numpy(zero_copy_only=False)
        .astype(np.float64)
    )


# name -> (kernel, pattern). Each is one pass of an Arrow regex kernel over the column.
_KERNELS: dict[str, tuple[str, str]] = {
    "words": ("count", r"\S+"),
    "code_block": ("match", CODE_BLOCK),
    "code_terms": ("count", CODE_TERMS),
    "math": ("count", MATH),
    "questions": ("count", QUESTION),
    "steps": ("count", ENUMERATION),
    "constraints": ("count", CONSTRAINTS),
    "depth": ("count", DEPTH),
    "expert": ("count", EXPERT),
    "trivial": ("match", TRIVIAL),
    "numbers": ("count", NUMBERS),
    "arithmetic": ("count", ARITHMETIC),
    "code_task": ("match", CODE_TASK),
    "word_problem": ("count", WORD_PROBLEM),
    "formal": ("count", FORMAL),
    "clinical": ("count", CLINICAL),
    "quantitative": ("count", QUANTITATIVE),
    "privacy": ("match", PRIVACY),
    "image_intent": ("match", IMAGE_GEN_INTENT),
    "speech_intent": ("match", SPEECH_INTENT),
    **{f"domain:{name}": ("count", pat) for name, pat in DOMAIN_PATTERNS.items()},
}
_POOL: ThreadPoolExecutor | None = None
PARALLEL_MIN_ROWS = 20_000  # below this, threads cost more than they save


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="features")
    return _POOL


# The same patterns compiled by Python's `re` for small batches of ASCII texts. An Arrow regex
# kernel call costs ~0.15 ms whatever the column length (RE2 set-up per call), so one text paid
# ~4.6 ms for the 30 kernels; compiled `re` takes ~0.2 ms (the service decides one query per request).
# re.ASCII gives RE2's ASCII-only \b, \w, \d, \s; on ASCII text the two engines' case-insensitive
# matching agree, and every pattern is leftmost-first in both. tests/test_features_small_batch.py
# checks the two paths row for row.
SMALL_BATCH_ROWS = 64
_COMPILED: dict[str, tuple[str, re.Pattern[str]]] = {
    name: (kind, re.compile(pattern, re.IGNORECASE | re.ASCII))
    for name, (kind, pattern) in _KERNELS.items()
}


def _count_like_arrow(rx: re.Pattern[str], text: str) -> int:
    r"""Matches counted the way Arrow's count_substring_regex counts them: after a match the search
    starts again on the rest of the text as a new string, so ``\b`` and ``^`` see no left context
    ("5/20/2025" counts two ``\b\d+/\d`` matches; ``finditer`` would count one)."""
    n = 0
    while text:
        m = rx.search(text)
        if m is None:
            break
        n += 1
        text = text[max(m.end(), m.start() + 1) :]
    return n


def _compiled_reads_alike(text: str | None) -> bool:
    """Texts on which compiled `re` and RE2 agree: ASCII (no Unicode case folding) without a
    vertical tab (Python's ``\\s`` has one, RE2's does not)."""
    return text is None or (text.isascii() and "\v" not in text)


def small_batch_texts(col: pa.Array) -> list[str | None] | None:
    """The column as Python strings when it may take a compiled-`re` path (fewer than
    ``SMALL_BATCH_ROWS`` rows, every text read alike by both engines); None: Arrow's path."""
    if len(col) >= SMALL_BATCH_ROWS:
        return None
    try:
        texts = col.to_pylist()
    except UnicodeDecodeError:  # invalid UTF-8 (callers should have quarantined it)
        return None
    return texts if all(map(_compiled_reads_alike, texts)) else None


def _run_compiled(texts: list[str | None]) -> dict[str, np.ndarray]:
    """Every kernel with compiled `re`, counting and matching as the Arrow kernels do."""
    out = {}
    for name, (kind, rx) in _COMPILED.items():
        if kind == "count":
            vals = [0 if t is None else _count_like_arrow(rx, t) for t in texts]
        else:
            vals = [0 if t is None else int(rx.search(t) is not None) for t in texts]
        out[name] = np.asarray(vals, dtype=np.float64)
    return out


def _run_kernels(col: pa.Array) -> dict[str, np.ndarray]:
    """Every regex kernel over the column; on big columns in parallel (Arrow releases the GIL),
    on small all-ASCII ones with compiled `re`. Each kernel is row-wise, so the result does not
    depend on how the work is split."""
    texts = small_batch_texts(col)
    if texts is not None:
        return _run_compiled(texts)

    def one(item: tuple[str, tuple[str, str]]) -> tuple[str, np.ndarray]:
        name, (kind, pattern) = item
        return name, (_count(col, pattern) if kind == "count" else _match(col, pattern))

    if len(col) >= PARALLEL_MIN_ROWS:
        return dict(_pool().map(one, _KERNELS.items()))
    return dict(map(one, _KERNELS.items()))


def extract(col: pa.Array) -> RuleFeatures:
    """Rule features for a column of (already bounded, valid UTF-8) texts."""
    k = _run_kernels(col)
    chars = pc.utf8_length(col).to_numpy(zero_copy_only=False).astype(np.float64)
    code = np.minimum(1.0, k["code_block"] * 0.6 + np.minimum(k["code_terms"], 3.0) * 0.25)
    math = np.minimum(1.0, k["math"] / 3.0)
    domain_hits = {name: k[f"domain:{name}"] for name in DOMAIN_PATTERNS}
    word_problems = np.minimum(k["word_problem"], 2.0) * (k["numbers"] >= 2)
    arithmetic = np.minimum(k["arithmetic"], 2.0) * (k["numbers"] >= 1)
    # A case vignette's ages, doses and lab values are not a word problem.
    not_clinical = k["clinical"] < 2
    domain_hits["math"] = domain_hits["math"] + (word_problems + arithmetic) * not_clinical
    domain_hits["biology"] = domain_hits["biology"] + np.minimum(k["clinical"], 3.0)
    return RuleFeatures(
        chars=chars,
        words=k["words"],
        code=code,
        math=math,
        questions=k["questions"],
        steps=k["steps"],
        constraints=k["constraints"],
        depth=k["depth"],
        expert=k["expert"],
        trivial=k["trivial"],
        numbers=k["numbers"],
        word_problem=k["word_problem"],
        formal=k["formal"],
        arithmetic=k["arithmetic"],
        code_task=k["code_task"],
        clinical=k["clinical"],
        quantitative=k["quantitative"],
        privacy=k["privacy"],
        image_intent=k["image_intent"],
        speech_intent=k["speech_intent"],
        domain_hits=domain_hits,
    )
