"""Seeded synthetic query corpus: realistic mix, daily and weekly traffic shape, optional bad rows.

Why synthetic: a pilot week needs a week of traffic that looks like production (lots of chit-chat
and voice commands, a long tail of hard requests, repeats of popular queries, quiet nights and
weekends) without real user text. Texts are composed from templates x slot fillers x optional
prefixes, suffixes, casing and typos, so a million rows hold hundreds of thousands of distinct
texts. Everything is drawn from one ``numpy`` generator: the same seed gives the same table.

Bad rows (``bad_rows > 0``) exercise every quarantine rule of ``data.corpus``. Two of them cannot
live in an ordinary Arrow table, so with bad rows the table changes shape, on purpose:

* ``ts`` becomes an ISO-8601 string column (``...Z``), so unparseable timestamps exist in every
  format (parquet included), not only in CSV and JSONL;
* ``invalid_encoding`` rows hold invalid UTF-8 bytes (an encoded lone surrogate, ``ED A0 80``)
  inside the Arrow string column, exactly what a broken producer leaves in a parquet file. Such a
  table must not be ``to_pylist()``-ed; ``write_corpus`` writes those bytes raw to parquet and CSV
  and as a ``\\ud800`` escape to JSONL.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import json
import os
import string
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from router.decision import ComplexityLevel, Domain

TEXT_LIMIT = 100_000  # characters; must match data.corpus.TEXT_LIMIT (asserted in the tests)
DEFAULT_TENANTS: tuple[str, ...] = ("acme-retail", "globex-health", "initech-dev", "umbrella-bank")
TENANT_WEIGHTS: tuple[float, ...] = (0.42, 0.24, 0.22, 0.12)
WEEKEND_FACTOR = 0.4  # weekend volume relative to a weekday
POPULAR_SHARE = 0.035  # rows drawn from a small pool of popular queries (exact repeats)
POPULAR_POOL = 400
ROW_GROUP_ROWS = 65_536
MAX_DAYS = 3_660  # ten years of traffic: the day x hour weights stay a small array  # parquet row groups small enough for a bounded-memory streaming read

# Bad-row kinds, in the reason-code vocabulary of data.corpus.
BAD_KINDS: tuple[str, ...] = (
    "missing_text",
    "empty_text",
    "unparseable_ts",
    "duplicate_query_id",
    "text_too_long",
    "invalid_encoding",
    "invalid_label",
)
# Valid but unusual rows injected alongside bad rows: the loader must accept them.
WEIRD_KINDS: tuple[str, ...] = ("emoji", "right_to_left", "nul_char")

INVALID_UTF8_MARK = "\ud800"  # a lone surrogate; stored as bytes ED A0 80 (surrogatepass)

CORPUS_COLUMNS: tuple[str, ...] = (
    "query_id",
    "ts",
    "text",
    "tenant",
    "expected_level",
    "expected_domain",
)

T, S, M, C, E = (
    ComplexityLevel.TRIVIAL,
    ComplexityLevel.SIMPLE,
    ComplexityLevel.MODERATE,
    ComplexityLevel.COMPLEX,
    ComplexityLevel.EXPERT,
)

# --------------------------------------------------------------------------------------------
# Slot fillers. A template names a slot as {name}; {name2} is a second, independent draw from
# the same list. Numbers are generated, words are listed.
# --------------------------------------------------------------------------------------------
_CODE_SNIPPETS = (
    "```python\ndef average(xs):\n    total = 0\n    for x in xs:\n        total += x\n"
    "    return total / len(xs)\n\nprint(average([]))\n```",
    "```python\nimport threading\n\ncounter = 0\n\ndef work():\n    global counter\n"
    "    for _ in range(100000):\n        counter += 1\n\nthreads = [threading.Thread(target=work) "
    "for _ in range(8)]\nfor t in threads: t.start()\nfor t in threads: t.join()\nprint(counter)\n```",
    "```javascript\nasync function loadUsers(ids) {\n  const users = [];\n  ids.forEach(async (id) => {\n"
    "    const res = await fetch(`/api/users/${id}`);\n    users.push(await res.json());\n  });\n"
    "  return users;\n}\n```",
    "```sql\nSELECT c.name, SUM(o.total) AS revenue\nFROM customers c\nLEFT JOIN orders o "
    "ON o.customer_id = c.id\nWHERE o.created_at >= '2026-01-01'\nGROUP BY c.name\n"
    "ORDER BY revenue DESC;\n```",
    "```rust\nfn longest<'a>(a: &'a str, b: &str) -> &'a str {\n    if a.len() > b.len() { a } "
    "else { b }\n}\n```",
    "```go\nfunc worker(jobs <-chan int, results chan<- int, wg *sync.WaitGroup) {\n"
    "    for j := range jobs {\n        results <- j * 2\n    }\n}\n\nfunc main() {\n"
    "    jobs := make(chan int)\n    results := make(chan int)\n    var wg sync.WaitGroup\n"
    "    wg.Add(1)\n    go worker(jobs, results, &wg)\n    jobs <- 1\n    wg.Wait()\n}\n```",
    "```python\nclass LRUCache:\n    def __init__(self, capacity):\n        self.capacity = capacity\n"
    "        self.data = {}\n\n    def get(self, key):\n        return self.data.get(key, -1)\n\n"
    "    def put(self, key, value):\n        if len(self.data) >= self.capacity:\n"
    "            self.data.pop(next(iter(self.data)))\n        self.data[key] = value\n```",
    '```java\nfor (String name : names) {\n    if (name.startsWith("tmp")) {\n'
    "        names.remove(name);\n    }\n}\n```",
    "```cpp\nstd::vector<int>& make() {\n    std::vector<int> v = {1, 2, 3};\n    return v;\n}\n```",
    "```python\ndf = pd.read_csv('sales.csv')\ndf['month'] = df['date'].dt.month\n"
    "print(df.groupby('month')['amount'].sum())\n```",
)
_VARS = ("xs", "items", "users", "scores", "rows", "names", "orders", "events", "nums", "data")
_SHORT_SNIPPETS = (
    tuple(f"`{v}.sort(reverse=True)`" for v in _VARS)
    + tuple(f"`git rebase -i HEAD~{i}`" for i in range(1, 8))
    + tuple(f"`SELECT * FROM {t} WHERE id = ?`" for t in _VARS)
    + tuple(f"`const {v} = arr.map(f).filter(Boolean)`" for v in _VARS)
    + tuple(f"`for i in range(len({v})):`" for v in _VARS)
    + tuple(f"`docker run -p {p}:80 nginx`" for p in (8080, 8000, 3000, 5000, 8888))
    + tuple(f"`{v} = {{k: v for k, v in {v}.items() if v}}`" for v in _VARS)
)
_LOG_LINE = (
    "2026-11-16T09:{mm:02d}:{ss:02d}.{ms:03d}Z ERROR [worker-{w}] request_id={rid} "
    "upstream=payments timeout after 30000ms; retrying (attempt {a}/5)\n"
)

SLOTS: dict[str, tuple[str, ...]] = {
    "n": tuple(str(i) for i in range(2, 61)),
    "big": tuple(str(i) for i in range(12, 999, 7)),
    "pct": ("5", "10", "12", "15", "18", "20", "25", "30", "40", "75"),
    "minutes": tuple(str(i) for i in range(1, 121)),
    "when": (
        "today",
        "tomorrow",
        "tonight",
        "this weekend",
        "on friday",
        "next week",
        "this afternoon",
        "tomorrow morning",
        "on saturday",
    ),
    "city": (
        "paris",
        "tokyo",
        "new york",
        "london",
        "berlin",
        "lagos",
        "mumbai",
        "são paulo",
        "toronto",
        "sydney",
        "seoul",
        "mexico city",
        "cairo",
        "istanbul",
        "madrid",
        "chicago",
        "singapore",
        "nairobi",
        "oslo",
        "lima",
        "denver",
        "austin",
        "dublin",
        "zürich",
        "boston",
        "seattle",
        "miami",
        "atlanta",
        "vancouver",
        "montreal",
        "bogotá",
        "buenos aires",
        "santiago",
        "accra",
        "johannesburg",
        "addis ababa",
        "dubai",
        "riyadh",
        "tehran",
        "karachi",
        "delhi",
        "bangalore",
        "dhaka",
        "bangkok",
        "jakarta",
        "manila",
        "hanoi",
        "shanghai",
        "beijing",
        "osaka",
        "melbourne",
        "auckland",
        "rome",
        "milan",
        "vienna",
        "prague",
        "warsaw",
        "stockholm",
        "helsinki",
        "copenhagen",
        "amsterdam",
        "brussels",
        "lisbon",
        "athens",
    ),
    "country": (
        "france",
        "japan",
        "brazil",
        "kenya",
        "canada",
        "australia",
        "india",
        "germany",
        "peru",
        "norway",
        "egypt",
        "vietnam",
        "mexico",
        "chile",
        "portugal",
        "thailand",
        "ghana",
        "poland",
        "turkey",
        "new zealand",
        "argentina",
        "mongolia",
        "iceland",
        "morocco",
    ),
    "room": (
        "kitchen",
        "living room",
        "bedroom",
        "office",
        "garage",
        "hallway",
        "bathroom",
        "porch",
    ),
    "chore": (
        "call mom",
        "take out the trash",
        "buy milk",
        "water the plants",
        "pick up the kids",
        "submit the report",
        "book the dentist",
        "pay rent",
        "feed the cat",
        "charge my laptop",
        "renew my passport",
        "move the car",
        "stretch",
        "drink water",
        "start the dishwasher",
        "check the oven",
        "leave for the airport",
        "join the standup",
        "send the invoice",
        "call the plumber",
        "buy a birthday card",
        "take my meds",
        "walk the dog",
        "pick up dry cleaning",
    ),
    "clock": tuple(f"{h}:{m:02d}" for h in range(1, 13) for m in range(0, 60, 5))
    + tuple(f"{h}{ap}" for h in range(1, 13) for ap in ("am", "pm", " am", " pm"))
    + ("noon", "midnight", "9 tonight", "5 o'clock"),
    "music": (
        "jazz",
        "lo-fi beats",
        "80s rock",
        "classical music",
        "some country",
        "my workout playlist",
        "bossa nova",
        "the latest top 40",
        "relaxing piano",
        "podcasts about history",
        "rain sounds",
        "k-pop",
        "reggaeton",
        "the beatles",
        "something upbeat",
        "afrobeats",
        "white noise",
        "christmas songs",
        "my discover weekly",
        "metal",
        "the radio",
    ),
    "name": (
        "Maya",
        "Liam",
        "Priya",
        "Chen",
        "Omar",
        "Sofia",
        "Jonas",
        "Aiko",
        "Kwame",
        "Lucía",
        "Noah",
        "Fatima",
        "Mateo",
        "Ingrid",
        "Ravi",
        "Zoe",
        "mom",
        "dad",
        "grandma",
        "my boss",
        "Alex",
        "Sam",
        "Jordan",
        "Emma",
        "Olivia",
        "Ethan",
        "Yuki",
        "Hana",
        "Diego",
        "Amara",
        "Leila",
        "Tomás",
        "Nia",
        "Sven",
        "Mei",
        "Arjun",
        "Chloe",
        "Ben",
        "Kofi",
        "Elena",
    ),
    "joke_topic": (
        "cats",
        "programmers",
        "penguins",
        "coffee",
        "mondays",
        "dinosaurs",
        "math",
        "space",
        "pirates",
        "the weather",
        "my job",
        "pizza",
        "robots",
        "bananas",
        "octopuses",
    ),
    "mood": ("tired", "happy", "stressed", "bored", "excited", "sad", "hungry", "sleepy", "great"),
    "fav": ("color", "movie", "food", "book", "song", "animal", "season", "number", "planet"),
    "holiday": ("birthday", "new year", "friday", "thanksgiving", "diwali", "eid", "holidays"),
    "temp": tuple(str(i) for i in range(16, 81)),
    "doc": ("invoice", "receipt", "bank statement", "lab report", "timetable", "menu", "contract"),
    "subtitle_lang": ("english", "spanish", "french", "german", "japanese", "portuguese", "hindi"),
    "ds": ("list", "tuple", "set", "dict", "array", "vector", "hash map", "linked list", "slice"),
    "thing": ("plant", "bird", "bug", "mushroom", "car", "building", "rock", "tree", "flower"),
    "item": ("apples", "pencils", "stickers", "cookies", "marbles", "books", "cupcakes", "stamps"),
    "author_q": (
        "who wrote pride and prejudice",
        "who painted the mona lisa",
        "who discovered penicillin",
        "who invented the telephone",
        "who was the first person on the moon",
        "who wrote one hundred years of solitude",
        "who composed the four seasons",
        "who founded wikipedia",
    ),
    "fact_q": (
        "how tall is mount everest",
        "how far is the moon",
        "how many bones are in the human body",
        "what is the boiling point of water in fahrenheit",
        "how many continents are there",
        "what is the speed of light",
        "how long is the great wall of china",
        "when did world war 2 end",
        "what is the largest ocean",
        "how many players are on a soccer team",
        "what year did the berlin wall fall",
        "what's the tallest building in the world",
    ),
    "unit_q": (
        "how many ounces in a cup",
        "how many feet in a mile",
        "how many grams in a pound",
        "how many seconds in a day",
        "how many ml in a tablespoon",
        "how many km in a marathon",
        "convert 30 celsius to fahrenheit",
        "convert 5 miles to km",
    ),
    "word": (
        "ephemeral",
        "ubiquitous",
        "serendipity",
        "pragmatic",
        "quixotic",
        "lugubrious",
        "sonder",
        "petrichor",
        "laconic",
        "obfuscate",
    ),
    "concept": (
        "inflation",
        "compound interest",
        "the greenhouse effect",
        "supply and demand",
        "how a mortgage works",
        "index funds",
        "jet lag",
        "how wifi works",
        "black holes",
        "the theory of relativity",
        "how elections are counted",
        "how credit scores work",
        "quantum computing",
        "the stock market",
    ),
    "pair": (
        "a roth ira and a traditional ira",
        "espresso and drip coffee",
        "leasing and buying a car",
        "renting and buying a home",
        "stocks and bonds",
        "kindle and kobo",
        "iphone and pixel cameras",
        "electric and hybrid cars",
    ),
    "email_topic": (
        "asking my landlord to fix the heating",
        "declining a job offer politely",
        "asking for a deadline extension",
        "following up after an interview",
        "complaining about a late delivery",
        "inviting the team to a farewell lunch",
        "requesting a refund for a cancelled flight",
    ),
    "lang": (
        "Python",
        "JavaScript",
        "TypeScript",
        "Go",
        "Rust",
        "Java",
        "C++",
        "Kotlin",
        "Bash",
        "C#",
    ),
    "code_task": (
        "checks whether a string is a palindrome",
        "merges two sorted lists",
        "parses a CSV line with quoted fields",
        "computes the nth Fibonacci number",
        "removes duplicates from a list while keeping order",
        "validates an email address",
        "converts Celsius to Fahrenheit",
        "counts word frequencies in a text file",
        "flattens a nested list",
        "returns the k most common elements",
        "debounces a function call",
        "retries an HTTP request with exponential backoff",
        "reads a JSON config and fills in defaults",
        "groups records by date",
    ),
    "code_howto": (
        "reverse a list in python",
        "center a div in css",
        "undo the last git commit",
        "read a file line by line in go",
        "format a date in javascript",
        "check if a key exists in a dict",
        "sort a dictionary by value",
        "rename a column in pandas",
        "exit vim",
        "make an http request in rust",
        "install a specific npm version",
        "delete a branch on github",
    ),
    "error": (
        "TypeError: 'NoneType' object is not subscriptable",
        "KeyError: 'id'",
        "IndexError: list index out of range",
        "segmentation fault (core dumped)",
        "java.util.ConcurrentModificationException",
        "ERROR: deadlock detected",
        "RecursionError: maximum recursion depth exceeded",
        "TypeError: undefined is not a function",
        "ZeroDivisionError: division by zero",
        "error[E0106]: missing lifetime specifier",
        "fatal error: all goroutines are asleep - deadlock!",
    ),
    "snippet": _CODE_SNIPPETS,
    "short_snippet": _SHORT_SNIPPETS,
    "organ": ("liver", "kidneys", "pancreas", "thyroid", "spleen", "gallbladder", "appendix"),
    "bio_term": (
        "mitochondria",
        "a ribosome",
        "CRISPR",
        "mRNA",
        "an enzyme",
        "a gene",
        "a protein kinase",
        "apoptosis",
        "DNA methylation",
        "a T cell",
        "an antibody",
        "a prion",
    ),
    "drug": (
        "ibuprofen",
        "metformin",
        "warfarin",
        "lisinopril",
        "atorvastatin",
        "amoxicillin",
        "sertraline",
        "omeprazole",
        "levothyroxine",
        "prednisone",
    ),
    "bio_process": (
        "DNA replication",
        "transcription",
        "translation at the ribosome",
        "the Krebs cycle",
        "glycolysis",
        "meiosis",
        "the immune response to a virus",
        "insulin signalling",
        "an action potential in a neuron",
        "the cell cycle checkpoints",
        "photosynthesis",
        "antibiotic resistance",
    ),
    "gene": ("TP53", "BRCA1", "KRAS", "EGFR", "CFTR", "MYC", "APOE", "PTEN", "HER2", "BCL2"),
    "cell": (
        "HEK293 cells",
        "iPSCs",
        "primary human T cells",
        "HeLa cells",
        "mouse embryonic fibroblasts",
        "intestinal organoids",
        "CHO cells",
    ),
    "symptom": (
        "a headache that won't go away",
        "a sore throat and fever",
        "itchy eyes",
        "lower back pain",
        "trouble sleeping",
        "a persistent cough",
    ),
    "robot": (
        "a 2-link planar arm",
        "a 6-DOF UR5 arm",
        "a differential-drive robot",
        "a quadruped",
        "a TurtleBot 4",
        "a quadcopter drone",
        "a 7-DOF Franka arm",
        "an omnidirectional mobile base",
    ),
    "ros_topic": (
        "/cmd_vel",
        "/odom",
        "/scan",
        "/camera/image_raw",
        "/joint_states",
        "/tf",
        "/imu",
    ),
    "sensor": ("lidar", "a depth camera", "an IMU", "wheel encoders", "a stereo camera", "GPS"),
    "robot_q": (
        "what is a ROS topic",
        "what does a PID controller do",
        "what is odometry",
        "what's the difference between ROS 1 and ROS 2",
        "what is a URDF file",
        "what does SLAM stand for",
    ),
    "objects": (
        "cars",
        "pedestrians",
        "cats",
        "faces",
        "surface defects",
        "boxes on the pallet",
        "traffic signs",
        "pills",
        "people without helmets",
        "birds",
    ),
    "camera": ("a dashcam", "a warehouse ceiling camera", "a drone camera", "a phone camera"),
    "fps": ("15", "30", "60"),
    "img_subject": (
        "a red fox",
        "an astronaut riding a horse",
        "a lighthouse",
        "a cyberpunk city",
        "a cozy cabin",
        "a friendly dragon",
        "a bowl of ramen",
        "a vintage car",
        "a robot barista",
        "a koi pond",
        "my dog as a superhero",
        "a medieval castle",
        "a cat wearing a tiny hat",
    ),
    "img_style": (
        "watercolor",
        "oil painting",
        "photorealistic",
        "pixel art",
        "anime style",
        "isometric 3d",
        "charcoal sketch",
        "low poly",
        "cinematic lighting",
        "vaporwave",
        "ukiyo-e",
    ),
    "img_setting": (
        "at sunset",
        "in the snow",
        "on mars",
        "in a rainy alley",
        "under the northern lights",
        "in a misty forest",
        "on a beach",
        "in space",
    ),
    "sentence": (
        "the meeting has moved to three o'clock",
        "happy birthday grandma, we love you",
        "chapter one: the storm",
        "please remember to lock the back door",
        "the quick brown fox jumps over the lazy dog",
        "welcome to our store, how can we help",
        "your package will arrive tomorrow",
    ),
    "voice": ("calm female", "deep male", "cheerful", "British", "slow and clear", "news anchor"),
    "agent_task": (
        "answers customer support emails using our help center",
        "monitors competitors' pricing pages and sends a weekly summary",
        "books meeting rooms from slack messages",
        "triages github issues and labels them",
        "reconciles invoices against purchase orders",
        "plans travel itineraries under a budget",
        "summarizes daily sales data and posts it to slack",
        "screens resumes against a job description",
        "drafts replies to app store reviews",
        "keeps our on-call runbook up to date",
    ),
    "agent_tools": (
        "a web search tool and a calculator",
        "our postgres database and a slack webhook",
        "gmail and google calendar",
        "the jira API",
        "a vector store of our docs",
        "stripe and our CRM",
    ),
    "system": (
        "a URL shortener",
        "a real-time chat service",
        "a ride-sharing dispatch system",
        "a payment ledger",
        "a global rate limiter",
        "a social news feed",
        "a distributed job scheduler",
        "a multi-tenant metrics pipeline",
        "a feature store",
        "a video transcoding pipeline",
        "an inventory reservation service",
        "a collaborative document editor",
    ),
    "qps": ("1k", "10k", "50k", "200k", "1M"),
    "ms": ("20", "50", "100", "200"),
    "constraint": (
        "must survive the loss of an entire region",
        "must keep EU customer data in the EU",
        "has a budget of $5k per month",
        "needs exactly-once processing",
        "is built and run by a team of three",
        "must deploy with zero downtime",
        "must preserve strict ordering per user",
        "must keep an audit trail for seven years",
    ),
    "tradeoff": (
        "consistency vs availability",
        "latency vs cost",
        "push vs pull",
        "SQL vs NoSQL",
        "a monolith vs microservices",
        "batch vs streaming",
        "build vs buy",
    ),
    "role": (
        "backend engineer",
        "data scientist",
        "nurse",
        "high school teacher",
        "PhD student",
        "startup founder",
        "robotics hobbyist",
    ),
    "org": (
        "a fintech startup",
        "a mid-size hospital",
        "a logistics company",
        "a university lab",
        "an online bookstore",
        "a game studio",
        "a city council",
        "a biotech company",
        "an insurance firm",
        "a robotics startup",
        "a news site",
        "a grocery chain",
        "a law firm",
        "a solar installer",
        "a nonprofit",
        "a telecom operator",
    ),
    "codename": tuple(
        f"{a}-{b}"
        for a in (
            "blue",
            "red",
            "quiet",
            "rapid",
            "silver",
            "amber",
            "iron",
            "north",
            "lucky",
            "green",
            "bright",
            "hidden",
            "golden",
            "swift",
            "misty",
            "polar",
            "cobalt",
            "velvet",
            "lunar",
            "crimson",
        )
        for b in (
            "heron",
            "falcon",
            "otter",
            "maple",
            "comet",
            "harbor",
            "lynx",
            "pine",
            "atlas",
            "delta",
            "ember",
            "fjord",
            "grove",
            "kite",
            "orbit",
            "quartz",
            "raven",
            "summit",
            "tundra",
            "willow",
        )
    ),
    "stack": (
        "Django and Postgres",
        "Node with MongoDB",
        "Spring Boot on Kubernetes",
        "Rails and Redis",
        "FastAPI on AWS Lambda",
        "Go microservices with Kafka",
        "a .NET monolith on Azure",
        "Elixir and Phoenix",
        "Flutter with Firebase",
        "Next.js on Vercel",
        "Snowflake and dbt",
        "Rust with gRPC",
    ),
    "past": ("yesterday", "last week", "monday", "this morning", "our call", "the standup"),
    "deadline": (
        "friday",
        "end of day",
        "tomorrow",
        "next sprint",
        "monday",
        "the demo on thursday",
    ),
    "a": tuple(str(i) for i in range(2, 40)),
    "prime": ("2", "3", "5", "7", "11", "13", "17", "19", "23"),
    "k": tuple(str(i) for i in range(2, 12)),
    "year": tuple(str(y) for y in range(2001, 2031)),
}

# --------------------------------------------------------------------------------------------
# Families: one (level, domain) intent with its templates and how common it is in work hours
# (weekdays 08-19 UTC) versus the rest of the week.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    level: ComplexityLevel
    domain: Domain
    templates: tuple[str, ...]
    work: float  # relative weight in work hours
    leisure: float  # relative weight evenings, nights, weekends
    chat: bool = True  # short chat register: casual prefixes, suffixes, casing and typos


G, CODE, MATH, BIO, ROB, VIS, SPE, IMG, AGT = (
    Domain.GENERAL,
    Domain.CODING,
    Domain.MATH,
    Domain.BIOLOGY,
    Domain.ROBOTICS,
    Domain.VISION,
    Domain.SPEECH,
    Domain.IMAGE_GEN,
    Domain.AGENT_BUILDER,
)

FAMILIES: tuple[Family, ...] = (
    # ---- TRIVIAL ---------------------------------------------------------------------------
    Family(
        "chit_chat",
        T,
        G,
        (
            "hi",
            "hello",
            "hey there",
            "good morning",
            "good night",
            "thanks",
            "thank you so much",
            "ok cool",
            "lol",
            "how are you",
            "how's it going",
            "tell me a joke",
            "tell me a fun fact",
            "who are you",
            "are you a robot",
            "what's up",
            "bye",
            "you're awesome",
            "i'm bored",
            "good afternoon {name}",
            "tell me a joke about {joke_topic}",
            "tell me a fun fact about {joke_topic}",
            "i'm feeling {mood} today",
            "i'm so {mood}",
            "do you like {music}",
            "what's your favorite {fav}",
            "happy {holiday}!",
            "say hi to {name}",
            "good morning from {city}",
            "say something nice",
            "flip a coin",
            "roll a die",
            "pick a number between 1 and {n}",
        ),
        work=6,
        leisure=10,
    ),
    Family(
        "voice_command",
        T,
        G,
        (
            "set a timer for {minutes} minutes",
            "set an alarm for {clock}",
            "remind me to {chore} at {clock}",
            "remind me to {chore} {when}",
            "what's the weather {when}",
            "what's the weather in {city}",
            "will it rain {when}",
            "turn off the {room} lights",
            "turn on the {room} lights",
            "dim the {room} lights to {pct} percent",
            "play {music}",
            "pause the music",
            "skip this song",
            "volume up",
            "what time is it in {city}",
            "add {item} to my shopping list",
            "call {name}",
            "text {name} i'm running {minutes} minutes late",
            "what's on my calendar {when}",
            "cancel my {clock} alarm",
            "how long is my commute {when}",
            "set the thermostat to {temp} degrees",
        ),
        work=9,
        leisure=16,
    ),
    Family(
        "arithmetic",
        T,
        MATH,
        (
            "what is {a} + {a2}",
            "{a} times {a2}",
            "what's {big} minus {a}",
            "{a}*{a2}=?",
            "what is {pct}% of {big}",
            "{big} divided by {a}",
            "is {big} an even number",
        ),
        work=3,
        leisure=2,
    ),
    Family(
        "multilingual_small_talk",
        T,
        G,
        (
            "¿qué tiempo hace en {city} hoy?",
            "wie spät ist es?",
            "bonjour, ça va ?",
            "مرحبا، كيف حالك؟",
            "ما هو الطقس اليوم؟",
            "שלום, מה שלומך?",
            "מה השעה עכשיו?",
            "今天天气怎么样？",
            "明日の天気は？",
            "नमस्ते, आप कैसे हैं?",
            "obrigado!",
            "grazie mille",
        ),
        work=1,
        leisure=1.5,
    ),
    # ---- SIMPLE ----------------------------------------------------------------------------
    Family(
        "short_factual",
        S,
        G,
        (
            "{author_q}",
            "{fact_q}",
            "{unit_q}",
            "what is the capital of {country}",
            "what currency does {country} use",
            "what language do they speak in {country}",
            "define {word}",
            "what does {word} mean",
            "synonym for {word}",
            "how do you spell {word}",
            "what time zone is {city} in",
            "when is the next holiday in {country}",
            "is {year} a leap year",
            "what day of the week was {clock} on new year's day {year}",
        ),
        work=10,
        leisure=10,
    ),
    Family(
        "coding_howto",
        S,
        CODE,
        (
            "how do i {code_howto}",
            "how to {code_howto}",
            "what does {short_snippet} do",
            "is {lang} compiled or interpreted",
            "what is a closure in {lang}",
            "difference between a {ds} and a {ds2} in {lang}",
            "what does `async` mean in {lang}",
            "what is the {lang} equivalent of {short_snippet}",
        ),
        work=7,
        leisure=2,
    ),
    Family(
        "health_simple",
        S,
        BIO,
        (
            "what does the {organ} do",
            "what is {bio_term}",
            "is it safe to take {drug} with alcohol",
            "what is {drug} used for",
            "how much water should i drink a day if i weigh {big} pounds",
            "i have {symptom}, what could it be",
            "can i take {drug} and {drug2} together",
        ),
        work=2.5,
        leisure=3,
    ),
    Family(
        "robotics_simple",
        S,
        ROB,
        ("{robot_q}", "how many motors does {robot} have", "what sensors does {robot} use"),
        work=1,
        leisure=0.6,
    ),
    Family(
        "vision_simple",
        S,
        VIS,
        (
            "describe this image",
            "describe this photo i took in {city}",
            "what's in this photo?",
            "what breed is the dog in this picture",
            "read the text in this screenshot",
            "what {thing} is this? [photo attached]",
            "is this mole in the picture something to worry about",
            "how many {objects} are in this image",
        ),
        work=2,
        leisure=2.5,
    ),
    Family(
        "speech_simple",
        S,
        SPE,
        (
            "read this aloud: {sentence}",
            "say '{sentence}' out loud",
            "read it to me in a {voice} voice",
            "say good morning to {name} out loud",
            "transcribe this voice memo from {name}",
            "convert this audio to text",
            "what language is this audio clip in",
            "read my last message from {name} aloud",
        ),
        work=1.5,
        leisure=2.5,
    ),
    Family(
        "image_gen_simple",
        S,
        IMG,
        (
            "generate an image of {img_subject}",
            "draw {img_subject}",
            "make a picture of {img_subject} {img_setting}",
            "create a {img_style} image of {img_subject}",
            "generate a wallpaper of {img_subject}",
        ),
        work=1.5,
        leisure=3,
    ),
    # ---- MODERATE --------------------------------------------------------------------------
    Family(
        "word_problem",
        M,
        MATH,
        (
            "{name} has {a} {item} and buys {k} more packs of {a2}. How many {item} does {name} "
            "have now?",
            "A train travels {big} km in {k} hours. What is its average speed?",
            "If {k} workers build a wall in {a} days, how long would {a2} workers take?",
            "solve {a}x + {a2} = {big}",
            "A rectangle has a perimeter of {big} cm and its length is {a} cm more than its "
            "width. Find the area.",
            "{name} saves ${a} a week. How many weeks until {name} can buy a bike that costs "
            "${big}?",
            "what is the probability of rolling a total of {k} with two dice",
            "{name} flips a coin {k} times. What is the probability of exactly {k2} heads?",
            "a shirt costs ${big} and is {pct}% off. what's the sale price?",
            "find the mean and median of {a}, {a2}, {k}, {big}",
        ),
        work=4,
        leisure=3,
        chat=False,
    ),
    Family(
        "explain_general",
        M,
        G,
        (
            "explain {concept} in simple terms",
            "explain {concept} like i'm five",
            "what's the difference between {pair}",
            "compare {pair} for someone on a budget in {country}",
            "write an email to {name} {email_topic}",
            "write a short, polite message {email_topic}, signed {name}",
            "summarize the pros and cons of {pair} for a {role}",
            "give me a 3-day itinerary for {city}",
            "help me plan a birthday party for {k} kids under ${big}",
            "write a haiku about {city} {when}",
        ),
        work=8,
        leisure=7,
        chat=False,
    ),
    Family(
        "short_function",
        M,
        CODE,
        (
            "write a {lang} function that {code_task}",
            "write a {lang} function that {code_task}, with a docstring and two tests",
            "can you write a small {lang} script that {code_task}",
            "implement a helper in {lang} that {code_task}",
            "write a regex that matches dates like {year}-11-16",
            "what's wrong with this? {short_snippet}",
            "convert this to {lang}: {short_snippet}",
            "explain what this code does:\n{snippet}",
        ),
        work=9,
        leisure=2,
        chat=False,
    ),
    Family(
        "biology_explain",
        M,
        BIO,
        (
            "explain how {bio_process} works",
            "what are the common side effects of {drug} and how does it interact with {drug2}?",
            "why do doctors prescribe {drug} for older patients",
            "explain what {gene} does and why mutations in it matter",
            "how does {bio_term} work, in a paragraph",
        ),
        work=2.5,
        leisure=1.5,
        chat=False,
    ),
    Family(
        "robotics_moderate",
        M,
        ROB,
        (
            "write a ROS 2 node in python that subscribes to {ros_topic} and logs each message",
            "compute the forward kinematics of a 2-link planar arm with link lengths {k} and {k2}",
            "how do i tune a PID controller for {robot}",
            "how do i publish velocity commands to {ros_topic} from the command line",
            "explain how {sensor} is used for localization on {robot}",
        ),
        work=1.5,
        leisure=0.6,
        chat=False,
    ),
    Family(
        "vision_moderate",
        M,
        VIS,
        (
            "detect all {objects} in this image and return bounding boxes as JSON",
            "count the {objects} in this picture and tell me where they are",
            "compare these two photos of my {room} and list the differences",
            "extract the table from this scanned {doc} image",
            "segment the {objects} in this image",
        ),
        work=2,
        leisure=1,
        chat=False,
    ),
    Family(
        "speech_moderate",
        M,
        SPE,
        (
            "transcribe this {a}-minute meeting recording and list the action items",
            "generate speech for this paragraph in a {voice} voice: {sentence}. {sentence2}.",
            "add {subtitle_lang} subtitles to this {a}-minute podcast episode",
            "transcribe this interview with {name} and label the speakers",
        ),
        work=1.5,
        leisure=0.8,
        chat=False,
    ),
    Family(
        "image_gen_moderate",
        M,
        IMG,
        (
            "generate an image of {img_subject} {img_setting}, {img_style}, highly detailed, "
            "soft rim light",
            "create a logo for a coffee shop called {name}'s, minimal, two colors",
            "make 4 variations of {img_subject} in {img_style} for a children's book",
            "generate a poster for a {city} jazz festival in {img_style}",
        ),
        work=1.2,
        leisure=1.5,
        chat=False,
    ),
    Family(
        "agent_moderate",
        M,
        AGT,
        (
            "build an agent that {agent_task}",
            "create a bot that {agent_task}",
            "i want an AI agent that {agent_task}. where do i start?",
        ),
        work=2,
        leisure=0.5,
        chat=False,
    ),
    # ---- COMPLEX ---------------------------------------------------------------------------
    Family(
        "debugging",
        C,
        CODE,
        (
            "why does this code raise {error}?\n\n{snippet}\n\nit only happens in production.",
            "I'm getting `{error}` from this:\n{snippet}\nWhat's the root cause and how do I fix "
            "it without changing the public API?",
            "This works locally but fails in CI with {error}:\n{snippet}\nWe run {lang} in "
            "docker. Explain why and propose a fix with a test.",
            "Refactor this for readability and performance, and explain each change:\n{snippet}",
            "Review this code for bugs, race conditions and edge cases:\n{snippet}",
        ),
        work=5,
        leisure=1,
        chat=False,
    ),
    Family(
        "system_design",
        C,
        G,
        (
            "Design {system} that handles {qps} requests per second with p99 latency under {ms} "
            "ms. It {constraint}. Discuss the trade-offs of {tradeoff}.",
            "We need {system}. Requirements: {qps} QPS peak, it {constraint}, and it {constraint2}. "
            "Propose an architecture and explain what you would build first.",
            "Compare two designs for {system}: one based on {tradeoff}. Which would you pick for a "
            "team that {constraint}?",
        ),
        work=3,
        leisure=0.6,
        chat=False,
    ),
    Family(
        "math_complex",
        C,
        MATH,
        (
            "compute the integral of x^{k} e^(-x) from 0 to infinity and justify convergence",
            "find the eigenvalues and eigenvectors of the matrix [[{a}, {k}], [{k}, {a2}]]",
            "solve the ODE y'' + {k}y = 0 with y(0) = 1, y'(0) = 0 and explain each step",
            "prove that the square root of {prime} is irrational",
            "find the Taylor series of ln(1 + x) around 0 and its radius of convergence",
            "how many ways can {a} people be seated around a round table if two of them refuse to "
            "sit together?",
            "show that the sum of the first n odd numbers is n^2 by induction",
        ),
        work=2,
        leisure=1,
        chat=False,
    ),
    Family(
        "biology_complex",
        C,
        BIO,
        (
            "Design a CRISPR knockout strategy for {gene} in {cell}, including guide selection, "
            "delivery, and how to validate on- and off-target edits.",
            "A patient on {drug} starts {drug2}. Walk through the pharmacokinetic interactions, "
            "which labs to monitor, and when to adjust the dose.",
            "Compare qPCR, RNA-seq and western blot for measuring {gene} expression in {cell}: "
            "sensitivity, cost, and what each can and cannot tell us.",
        ),
        work=1.2,
        leisure=0.3,
        chat=False,
    ),
    Family(
        "robotics_complex",
        C,
        ROB,
        (
            "Derive the inverse kinematics for {robot} and explain how to handle singularities "
            "and joint limits.",
            "Fuse {sensor} and {sensor2} with an extended Kalman filter for localization on "
            "{robot}. Give the state vector, process model and measurement models.",
            "Plan collision-free trajectories for {robot} in a cluttered warehouse with MoveIt 2; "
            "compare RRT* and CHOMP for this case.",
        ),
        work=1,
        leisure=0.3,
        chat=False,
    ),
    Family(
        "vision_complex",
        C,
        VIS,
        (
            "Design an object detection pipeline for {objects} from {camera} running at {fps} "
            "fps on a Jetson Orin: model choice, quantization, tracking, and how to measure "
            "accuracy in the field.",
            "Our detector misses small {objects} at night. Analyze likely causes (data, anchors, "
            "resolution, augmentation) and propose experiments in priority order.",
        ),
        work=1,
        leisure=0.2,
        chat=False,
    ),
    Family(
        "speech_complex",
        C,
        SPE,
        (
            "Build a pipeline that diarizes a {k}-speaker call, transcribes it, redacts personal "
            "data and flags compliance risks. Which models and how to evaluate word error rate?",
        ),
        work=0.5,
        leisure=0.1,
        chat=False,
    ),
    Family(
        "agent_complex",
        C,
        AGT,
        (
            "Build an agent that {agent_task} using {agent_tools}. It {constraint}, must escalate "
            "to a human when unsure, and must never send anything without approval.",
            "Design a multi-agent workflow where a planner agent delegates to a researcher and a "
            "writer that {agent_task}. How do the agents share memory and how do we evaluate it?",
        ),
        work=1.5,
        leisure=0.3,
        chat=False,
    ),
    # ---- EXPERT ----------------------------------------------------------------------------
    Family(
        "competition_math",
        E,
        MATH,
        (
            "Prove that for every prime p > 3, p^2 - 1 is divisible by 24.",
            "Find all functions f: R -> R such that f(x + y) = f(x) + f(y) + {k}xy for all real "
            "x and y. Prove that your list is complete.",
            "Let a, b, c be positive reals with a + b + c = {k}. Prove that "
            "a/(b + c) + b/(c + a) + c/(a + b) >= 3/2 and find when equality holds.",
            "Determine all positive integers n such that {k}^n + 1 is divisible by n^2.",
            "Prove that there are infinitely many primes of the form 4k + 3.",
            "How many positive integers n <= {big}{big2} make n^2 + n + 1 divisible by 7? Give a "
            "rigorous count.",
            "Let G be a finite group of order {prime}^2. Prove that G is abelian.",
            "Prove that every planar graph is 5-colorable.",
        ),
        work=1.2,
        leisure=0.8,
        chat=False,
    ),
    Family(
        "expert_engineering",
        E,
        CODE,
        (
            "Implement a lock-free multi-producer multi-consumer queue in {lang}, explain the "
            "memory ordering of every atomic operation, and argue why it is linearizable.",
            "Implement Raft leader election and log replication in {lang} with tests for network "
            "partitions; explain how you guarantee safety when two leaders briefly coexist.",
            "We see a heisenbug under load:\n{snippet}\nand also\n{snippet2}\nthe service "
            "{constraint}. Find every concurrency bug, prove the fix is correct, and give a "
            "test that reproduces each one deterministically.",
            "Design and implement a sharded, replicated key-value store in {lang} that {constraint} "
            "and {constraint2}. Cover consistency model, failure detection, rebalancing, and a "
            "formal argument for correctness under partitions.",
        ),
        work=1.5,
        leisure=0.3,
        chat=False,
    ),
    Family(
        "expert_architecture",
        E,
        G,
        (
            "You are advising a bank. Design {system} serving {qps} QPS across three regions. "
            "Requirements:\n1. it {constraint}\n2. it {constraint2}\n3. p99 under {ms} ms\n"
            "Analyze {tradeoff} and {tradeoff2}, estimate monthly cost, list failure modes with "
            "mitigations, and give a phased migration plan from the current monolith.",
            "Write a technical strategy for migrating {system} to an event-driven architecture: "
            "(a) target design, (b) data migration without downtime, (c) how to prove no "
            "messages are lost, (d) rollout and rollback plan. It {constraint}.",
        ),
        work=1,
        leisure=0.2,
        chat=False,
    ),
    Family(
        "expert_biology",
        E,
        BIO,
        (
            "Given RNA-seq showing {gene} up-regulated after {drug} treatment in {cell}, propose "
            "three competing mechanisms, design experiments that discriminate between them "
            "(controls, replicates, statistics), and say which result would falsify each.",
            "Critically evaluate whether {gene} is a viable drug target: genetic evidence, "
            "tractability, toxicity risks, and a biomarker strategy for a phase I trial.",
        ),
        work=0.6,
        leisure=0.1,
        chat=False,
    ),
    Family(
        "expert_robotics",
        E,
        ROB,
        (
            "Derive the full rigid-body dynamics of {robot} with the Lagrangian formulation, then "
            "design a model predictive controller with torque limits and contact constraints; "
            "analyse stability and real-time feasibility at 1 kHz.",
            "Formulate multi-robot task allocation for {k} warehouse robots as an optimization "
            "problem, prove its complexity class, and give an approximation algorithm with "
            "bounds.",
        ),
        work=0.5,
        leisure=0.1,
        chat=False,
    ),
    Family(
        "expert_agents",
        E,
        AGT,
        (
            "Design a multi-agent system of {k} agents that {agent_task} using {agent_tools}, "
            "with a planner, tool-calling workers, long-term memory, cost budgets, and an "
            "evaluation harness with adversarial test cases. It {constraint}. Justify each "
            "design choice and the failure modes you accept.",
        ),
        work=0.6,
        leisure=0.1,
        chat=False,
    ),
)

# Context sentences real users add to longer requests; probability by level. They make long
# queries nearly unique, as they are in real traffic, while short ones keep repeating.
CONTEXTS: tuple[str, ...] = (
    "I'm a {role} at {org}.",
    "I'm a {role} at {org} in {city}.",
    "Context: {org}, team of {n}, stack is {stack}.",
    "We're on {stack}.",
    "This is for project {codename}.",
    "For project {codename} ({stack}):",
    "Background: I work at {org} and this is due {deadline}.",
    "Asking for {name}, who is a {role}.",
    "Our team ({n} people, {org}) is stuck on this.",
    "Follow-up to my question from {past}:",
    "Ticket {codename}-{big}:",
    "Due {deadline}. Using {stack}.",
)
CONTEXT_P: dict[ComplexityLevel, float] = {T: 0.0, S: 0.12, M: 0.6, C: 0.8, E: 0.85}

CHAT_PREFIXES: tuple[tuple[str, float], ...] = (
    ("", 40),
    ("amaima, ", 2),
    ("ok amaima ", 2),
    ("pls ", 2),
    ("could you ", 2),
    ("Hey! ", 2),
    ("hmm ", 1),
    ("right, ", 1),
    ("btw ", 1),
    ("sorry, ", 1),
    ("one more thing: ", 1),
    ("hey ", 6),
    ("hey amaima, ", 3),
    ("ok ", 3),
    ("please ", 3),
    ("quick question: ", 3),
    ("hi, ", 3),
    ("umm ", 2),
    ("Hello! ", 2),
    ("so ", 2),
    ("yo ", 1),
    ("can u ", 1),
)
CHAT_SUFFIXES: tuple[tuple[str, float], ...] = (
    ("", 35),
    (".", 6),
    ("!", 3),
    (" pls", 2),
    (" thank you", 2),
    (" 😂", 1),
    (" 👍", 1),
    (" ...", 1),
    (" now", 1),
    (" real quick", 1),
    (" lol", 1),
    (" ty", 1),
    ("?", 14),
    (" please", 4),
    (" thanks", 4),
    (" thx", 2),
    (" :)", 2),
    (" 🙂", 2),
    (" 🙏", 1),
    ("!!", 1),
    (" asap", 1),
    (" 😅", 1),
    ("??", 2),
)
LONG_PREFIXES: tuple[tuple[str, float], ...] = (
    ("", 70),
    ("Hi! ", 4),
    ("I need help with the following. ", 4),
    ("Hey, ", 3),
    ("Task: ", 3),
    ("Quick one: ", 3),
    ("For a project at work: ", 4),
    ("Please help. ", 3),
)
LONG_SUFFIXES: tuple[tuple[str, float], ...] = (
    ("", 62),
    (" Please be thorough.", 5),
    (" Show your reasoning step by step.", 5),
    (" Keep it under 300 words.", 5),
    (" Include code where useful.", 4),
    (" Thanks in advance!", 5),
    (" Cite sources if you can.", 3),
    (" Answer in bullet points.", 4),
    (" I'm in a hurry.", 3),
    (" 🙏", 2),
)
RTL_TEXTS: tuple[tuple[str, ComplexityLevel, Domain], ...] = (
    ("ما هي عاصمة اليابان؟", S, G),
    ("اشرح لي كيف يعمل التضخم", M, G),
    ("מה ההבדל בין וירוס לחיידק?", S, BIO),
    ("כתוב פונקציה בפייתון שממיינת רשימה", M, CODE),
    ("ترجم هذه الجملة إلى الإنجليزية: صباح الخير", S, G),
)
EMOJI_TAILS: tuple[str, ...] = (" 🚀🔥", " 👩🏽‍💻✨", " 🤔🤔🤔", " 🇯🇵🍣", " ❤️‍🔥")


def _compile(template: str) -> tuple[str, tuple[tuple[str, ...], ...]]:
    """Turn '{name}' placeholders into a %-format string and the slot lists it draws from."""
    parts: list[str] = []
    slots: list[tuple[str, ...]] = []
    for literal, field, _spec, _conv in string.Formatter().parse(template):
        parts.append(literal.replace("%", "%%"))
        if field is None:
            continue
        key = field.rstrip("0123456789")
        if key not in SLOTS:
            raise KeyError(f"template {template!r} names unknown slot {field!r}")
        parts.append("%s")
        slots.append(SLOTS[key])
    return "".join(parts), tuple(slots)


_COMPILED: tuple[tuple[tuple[str, tuple[np.ndarray, ...]], ...], ...] = tuple(
    tuple(
        (fmt, tuple(np.array(s, dtype=object) for s in slots))
        for fmt, slots in map(_compile, fam.templates)
    )
    for fam in FAMILIES
)
_CONTEXTS = tuple(
    (fmt, tuple(np.array(s, dtype=object) for s in slots)) for fmt, slots in map(_compile, CONTEXTS)
)
_FAMILY_CONTEXT_P = np.array([CONTEXT_P[f.level] for f in FAMILIES])
_FAMILY_LEVEL = np.array([f.level.value for f in FAMILIES], dtype=object)
_FAMILY_DOMAIN = np.array([f.domain.value for f in FAMILIES], dtype=object)
_FAMILY_CHAT = np.array([f.chat for f in FAMILIES])


def _weights(pairs: Sequence[tuple[str, float]]) -> tuple[np.ndarray, np.ndarray]:
    values = np.array([v for v, _ in pairs], dtype=object)
    w = np.array([p for _, p in pairs], dtype=np.float64)
    return values, w / w.sum()


def _family_probs(attr: str) -> np.ndarray:
    w = np.array([getattr(f, attr) for f in FAMILIES], dtype=np.float64)
    return w / w.sum()


def diurnal_weights() -> np.ndarray:
    """Relative traffic per UTC hour: quiet nights, a mid-morning and an afternoon peak, a small
    evening bump (voice assistants)."""
    h = np.arange(24) + 0.5
    w = (
        0.05
        + 1.0 * np.exp(-0.5 * ((h - 10.5) / 1.8) ** 2)
        + 0.9 * np.exp(-0.5 * ((h - 15.0) / 2.2) ** 2)
        + 0.45 * np.exp(-0.5 * ((h - 20.5) / 1.4) ** 2)
    )
    return w / w.sum()


def _cell_probs(start: date, days: int) -> np.ndarray:
    """Probability of each (day, UTC hour) cell, day-major."""
    day_w = np.array(
        [WEEKEND_FACTOR if (start + timedelta(d)).weekday() >= 5 else 1.0 for d in range(days)]
    )
    cell_p = (day_w[:, None] * diurnal_weights()[None, :]).ravel()
    cell_p /= cell_p.sum()
    return cell_p


def _work_hours(start: date, days: int, cells: np.ndarray) -> np.ndarray:
    day_idx, hour = np.divmod(cells, 24)
    weekday = np.array([(start + timedelta(d)).weekday() < 5 for d in range(days)])[day_idx]
    return weekday & (hour >= 8) & (hour < 19)


def _sample_times(
    rng: np.random.Generator, n: int, start: date, days: int
) -> tuple[np.ndarray, np.ndarray]:
    """Timestamps (int64 microseconds since epoch, sorted) and a work-hours mask."""
    cell_p = _cell_probs(start, days)
    cells = np.sort(rng.choice(cell_p.size, size=n, p=cell_p))
    offset_us = rng.integers(0, 3_600_000_000, size=n)
    start_us = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()) * 10**6
    ts = start_us + cells.astype(np.int64) * 3_600_000_000 + offset_us
    order = np.argsort(ts, kind="stable")
    ts, cells = ts[order], cells[order]
    return ts, _work_hours(start, days, cells)


def _fill(
    rng: np.random.Generator,
    templates: tuple[tuple[str, tuple[np.ndarray, ...]], ...],
    out: np.ndarray,
    rows: np.ndarray,
) -> None:
    """Fill ``out[rows]``: a template per row, then an independent draw per slot."""
    tpl = rng.integers(0, len(templates), size=rows.size)
    for t in np.unique(tpl):
        sub = rows[tpl == t]
        fmt, slots = templates[t]
        if not slots:
            out[sub] = fmt
            continue
        cols = [s[rng.integers(0, s.size, size=sub.size)] for s in slots]
        out[sub] = [fmt % vals for vals in zip(*cols, strict=True)]


def _compose(rng: np.random.Generator, fam: np.ndarray) -> np.ndarray:
    """Texts for the given family indices, some with a context sentence in front."""
    out = np.empty(fam.size, dtype=object)
    for f in np.unique(fam):
        _fill(rng, _COMPILED[f], out, np.flatnonzero(fam == f))
    with_ctx = np.flatnonzero(rng.random(fam.size) < _FAMILY_CONTEXT_P[fam])
    if with_ctx.size:
        ctx = np.empty(with_ctx.size, dtype=object)
        _fill(rng, _CONTEXTS, ctx, np.arange(with_ctx.size))
        out[with_ctx] = [c + " " + t for c, t in zip(ctx, out[with_ctx], strict=True)]
    return out


def _typo(text: str, pos: float) -> str:
    """Swap two neighbouring characters: the commonest typing slip."""
    if len(text) < 4:
        return text
    i = 1 + int(pos * (len(text) - 3))
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def _decorate(rng: np.random.Generator, texts: np.ndarray, chat: np.ndarray) -> np.ndarray:
    """Prefixes, suffixes, casing, dropped apostrophes, stray spaces and typos: the noise that
    makes real traffic varied. Chat-register rows get much more of it than long requests."""
    n = texts.size
    out = texts.copy()
    for mask, prefixes, suffixes in (
        (chat, CHAT_PREFIXES, CHAT_SUFFIXES),
        (~chat, LONG_PREFIXES, LONG_SUFFIXES),
    ):
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            continue
        pv, pp = _weights(prefixes)
        sv, sp = _weights(suffixes)
        pre = pv[rng.choice(pv.size, size=idx.size, p=pp)]
        suf = sv[rng.choice(sv.size, size=idx.size, p=sp)]
        out[idx] = [p + t + s for p, t, s in zip(pre, out[idx], suf, strict=True)]
    u = rng.random((4, n))
    chat_idx = np.flatnonzero(chat)
    cap = chat_idx[(u[0, chat_idx] >= 0.55) & (u[0, chat_idx] < 0.97)]
    upper = chat_idx[u[0, chat_idx] >= 0.985]
    out[cap] = [t[:1].upper() + t[1:] for t in out[cap]]
    out[upper] = [t.upper() for t in out[upper]]
    no_apos = chat_idx[u[1, chat_idx] < 0.2]
    out[no_apos] = [t.replace("'", "") for t in out[no_apos]]
    spaced = chat_idx[u[2, chat_idx] < 0.04]
    out[spaced] = [t + " " for t in out[spaced]]
    typo = np.flatnonzero(u[3] < np.where(chat, 0.08, 0.02))
    pos = rng.random(typo.size)
    out[typo] = [_typo(t, p) for t, p in zip(out[typo], pos, strict=True)]
    return out


def _popular_pool(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A few hundred popular short queries (chat register, TRIVIAL or SIMPLE) with Zipf-like
    popularity: the head of real traffic."""
    w = np.array([f.leisure + f.work for f in FAMILIES]) * _FAMILY_CHAT
    w = w * np.select([_FAMILY_LEVEL == T.value, _FAMILY_LEVEL == S.value], [3.0, 1.0], 0.0)
    fam = rng.choice(len(FAMILIES), size=POPULAR_POOL, p=w / w.sum())
    fam = fam[np.argsort(_FAMILY_LEVEL[fam] != T.value, kind="stable")]
    texts = _compose(rng, fam)
    popularity = 1.0 / np.arange(1, POPULAR_POOL + 1) ** 1.1
    return texts, fam, popularity / popularity.sum()


def _to_date(value: date | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"start {value!r} is not an ISO date (YYYY-MM-DD)") from None


_LOG_HEAD = "please find the root cause in this log:\n"


@functools.cache
def _log_dump() -> str:
    """About 125,000 characters of log lines, built once and sliced per row."""
    lines, size, i = [], 0, 0
    while size < TEXT_LIMIT + 25_000:
        line = _LOG_LINE.format(
            mm=i % 60, ss=(i * 7) % 60, ms=(i * 13) % 1000, w=i % 16, rid=f"{i:08x}", a=i % 5 + 1
        )
        lines.append(line)
        size += len(line)
        i += 1
    return "".join(lines)


def _long_text(rng: np.random.Generator) -> str:
    """A pasted log dump just over the corpus size limit."""
    target = TEXT_LIMIT + int(rng.integers(1, 20_000))
    return _LOG_HEAD + _log_dump()[: target - len(_LOG_HEAD)]


def _string_array(values: list[str | None]) -> pa.Array:
    """A string array from Python strings that may hold lone surrogates: encoded with
    surrogatepass and assembled from buffers, because Arrow refuses such strings otherwise."""
    n = len(values)
    encoded = [b"" if v is None else v.encode("utf-8", "surrogatepass") for v in values]
    valid = np.array([v is not None for v in values])
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    large = offsets[-1] >= 2**31
    typ = pa.large_string() if large else pa.string()
    off = offsets if large else offsets.astype(np.int32)
    bitmap = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little").tobytes())
    return pa.Array.from_buffers(
        typ,
        n,
        [bitmap, pa.py_buffer(off.tobytes()), pa.py_buffer(b"".join(encoded))],
        null_count=int((~valid).sum()),
    )


@dataclass(frozen=True, slots=True)
class _Corruption:
    positions: np.ndarray
    kinds: np.ndarray


def _plan_corruption(rng: np.random.Generator, n: int, bad_rows: float) -> _Corruption:
    """Which rows become which bad or weird kind. Row 0 stays clean (a duplicate needs an
    earlier clean row to copy its id from)."""
    n_bad = int(round(n * bad_rows))
    if n_bad == 0:
        return _Corruption(np.empty(0, dtype=np.int64), np.empty(0, dtype=object))
    n_weird = max(len(WEIRD_KINDS), n_bad * len(WEIRD_KINDS) // len(BAD_KINDS))
    n_bad = min(n_bad, max(0, n - 1 - n_weird))
    if n_bad < len(BAD_KINDS):
        raise ValueError(
            f"bad_rows={bad_rows} of n={n} leaves room for {n_bad} bad rows; at least "
            f"{len(BAD_KINDS)} (one per kind) plus {n_weird} weird rows are needed: raise n or "
            "bad_rows"
        )
    kinds = np.array(
        [BAD_KINDS[i % len(BAD_KINDS)] for i in range(n_bad)]
        + [WEIRD_KINDS[i % len(WEIRD_KINDS)] for i in range(n_weird)],
        dtype=object,
    )
    positions = 1 + rng.choice(n - 1, size=kinds.size, replace=False)
    return _Corruption(positions.astype(np.int64), kinds)


def generate_corpus(
    n: int,
    seed: int = 42,
    days: int = 7,
    start: date | str = "2026-11-16",
    bad_rows: float = 0.0,
    tenants: Sequence[str] = DEFAULT_TENANTS,
    progress: Callable[[str], None] | None = None,
) -> pa.Table:
    """A seeded synthetic corpus of ``n`` rows over ``days`` UTC days from ``start``, sorted by ts.

    ``bad_rows`` is the fraction of rows corrupted, split evenly over ``BAD_KINDS``; as many
    valid-but-weird rows (emoji, right-to-left, NUL) are added beside them. See the module
    docstring for how bad rows change the table's types.
    """
    start_d = _check_args(n, days, start, bad_rows, tenants)
    step = progress or (lambda _msg: None)
    rng = np.random.default_rng(seed)

    step("timestamps")
    ts_us, work = _sample_times(rng, n, start_d, days)

    step("query mix")
    pool = _popular_pool(rng)
    return _rows(rng, ts_us, work, pool, seed, 0, bad_rows, tenants, step, bad_shape=False)


def _check_args(
    n: int, days: int, start: date | str, bad_rows: float, tenants: Sequence[str]
) -> date:
    """The start day, after refusing arguments no corpus can be made of."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be between 1 and {MAX_DAYS:,}, got {days:,}")
    if not 0.0 <= bad_rows < 0.5:
        raise ValueError(f"bad_rows is a fraction in [0, 0.5), got {bad_rows}")
    if not tenants:
        raise ValueError("tenants must name at least one tenant")
    start_d = _to_date(start)
    if start_d > date.max - timedelta(days=days):
        raise ValueError(f"start {start_d} plus {days:,} days runs past year 9999")
    return start_d


def _rows(
    rng: np.random.Generator,
    ts_us: np.ndarray,
    work: np.ndarray,
    pool: tuple[np.ndarray, np.ndarray, np.ndarray],
    seed: int,
    first: int,
    bad_rows: float,
    tenants: Sequence[str],
    step: Callable[[str], None],
    *,
    bad_shape: bool,
) -> pa.Table:
    """The rows for the given timestamps; query ids count from ``first``. ``bad_shape`` keeps
    the bad-row column types even when this table has no bad row (streamed chunks must share
    one schema)."""
    n = ts_us.size
    pool_texts, pool_fam, pool_p = pool
    popular = rng.random(n) < POPULAR_SHARE
    fam = np.empty(n, dtype=np.int64)
    for mask, probs in ((work, _family_probs("work")), (~work, _family_probs("leisure"))):
        idx = np.flatnonzero(mask & ~popular)
        fam[idx] = rng.choice(len(FAMILIES), size=idx.size, p=probs)
    pop_idx = np.flatnonzero(popular)
    pick = rng.choice(POPULAR_POOL, size=pop_idx.size, p=pool_p)
    fam[pop_idx] = pool_fam[pick]

    step("texts")
    fresh = np.flatnonzero(~popular)
    texts = np.empty(n, dtype=object)
    texts[fresh] = _decorate(rng, _compose(rng, fam[fresh]), _FAMILY_CHAT[fam[fresh]])
    texts[pop_idx] = pool_texts[pick]
    levels = _FAMILY_LEVEL[fam]
    domains = _FAMILY_DOMAIN[fam]

    tenant_w = np.array(TENANT_WEIGHTS[: len(tenants)], dtype=np.float64)
    if tenant_w.size < len(tenants):
        tenant_w = np.ones(len(tenants))
    tenant = np.array(list(tenants), dtype=object)[
        rng.choice(len(tenants), size=n, p=tenant_w / tenant_w.sum())
    ]
    query_ids = np.array([f"q{seed}-{i:08d}" for i in range(first, first + n)], dtype=object)

    try:
        plan = _plan_corruption(rng, n, bad_rows)
    except ValueError:
        if not bad_shape:
            raise
        plan = _Corruption(np.empty(0, dtype=np.int64), np.empty(0, dtype=object))  # tiny chunk
    if plan.positions.size == 0 and not bad_shape:
        step("table")
        return pa.table(
            {
                "query_id": pa.array(query_ids, pa.string()),
                "ts": pa.array(ts_us, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
                "text": pa.array(texts, pa.string()),
                "tenant": pa.array(tenant, pa.string()),
                "expected_level": pa.array(levels, pa.string()),
                "expected_domain": pa.array(domains, pa.string()),
            }
        )

    step("bad rows")
    ts_str = np.char.add(np.datetime_as_string(ts_us.astype("datetime64[us]"), unit="us"), "Z")
    ts_col = ts_str.astype(object)
    text_col: np.ndarray = texts.astype(object)
    clean = np.ones(n, dtype=bool)
    clean[plan.positions] = False
    clean_idx = np.flatnonzero(clean)
    bad_ts = ("not a timestamp", "2026-02-30T25:61:00Z", "yesterday at noon", "", "16/11/2026 9am")
    for j, (pos, kind) in enumerate(zip(plan.positions, plan.kinds, strict=True)):
        if kind == "missing_text":
            text_col[pos] = None
        elif kind == "empty_text":
            text_col[pos] = (" ", "   ", "\t", " \n ")[j % 4]
        elif kind == "unparseable_ts":
            ts_col[pos] = bad_ts[j % len(bad_ts)]
        elif kind == "duplicate_query_id":
            n_earlier = int(np.searchsorted(clean_idx, pos))  # row 0 is always clean
            query_ids[pos] = query_ids[clean_idx[int(rng.integers(0, n_earlier))]]
        elif kind == "text_too_long":
            text_col[pos] = _long_text(rng)
        elif kind == "invalid_encoding":
            t = text_col[pos]
            cut = len(t) // 2
            text_col[pos] = t[:cut] + INVALID_UTF8_MARK + t[cut:]
        elif kind == "invalid_label":
            if j % 2:
                levels[pos] = "ULTRA"
            else:
                domains[pos] = "astrology"
        elif kind == "emoji":
            text_col[pos] = text_col[pos] + EMOJI_TAILS[j % len(EMOJI_TAILS)]
        elif kind == "right_to_left":
            rtl, lvl, dom = RTL_TEXTS[j % len(RTL_TEXTS)]
            text_col[pos], levels[pos], domains[pos] = rtl, lvl.value, dom.value
        elif kind == "nul_char":
            t = text_col[pos]
            text_col[pos] = t[: len(t) // 2] + "\x00" + t[len(t) // 2 :]
    step("table")
    return pa.table(
        {
            "query_id": pa.array(query_ids, pa.string()),
            "ts": pa.array(ts_col, pa.string()),
            "text": _string_array(list(text_col)),
            "tenant": pa.array(tenant, pa.string()),
            "expected_level": pa.array(levels, pa.string()),
            "expected_domain": pa.array(domains, pa.string()),
        }
    )


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------
FORMATS: dict[str, str] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".csv.gz": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".jsonl.gz": "jsonl",
}


def format_for(path: Path) -> str | None:
    """Format name for a path by extension (``.csv.gz`` counts as CSV), or None."""
    name = path.name.lower()
    for ext in sorted(FORMATS, key=len, reverse=True):
        if name.endswith(ext):
            return FORMATS[ext]
    return None


def _python_columns(table: pa.Table) -> dict[str, list]:
    """Columns as Python values; strings decoded with surrogatepass so invalid bytes survive as
    lone surrogates, and timestamps as ISO-8601 ``Z`` strings."""
    cols: dict[str, list] = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_timestamp(col.type):
            us = pc.cast(col, pa.timestamp("us", tz="UTC")).cast(pa.int64())
            arr = us.to_numpy(zero_copy_only=False).astype("datetime64[us]")
            iso = np.char.add(np.datetime_as_string(arr, unit="us"), "Z").tolist()
            nulls = col.is_null().to_numpy(zero_copy_only=False)
            cols[name] = [None if z else v for v, z in zip(iso, nulls, strict=True)]
        elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            raw = pc.cast(col, pa.large_binary()).to_pylist()
            cols[name] = [None if b is None else b.decode("utf-8", "surrogatepass") for b in raw]
        else:
            cols[name] = col.to_pylist()
    return cols


def _open_text(path: Path) -> IO[str]:
    raw = gzip.open(path, "wb") if path.name.lower().endswith(".gz") else open(path, "wb")  # noqa: SIM115
    return io.TextIOWrapper(raw, encoding="utf-8", errors="surrogatepass", newline="")


def write_corpus(table: pa.Table, path: str | Path, format: str | None = None) -> Path:
    """Write a corpus table as parquet, CSV or JSONL, chosen by extension unless ``format`` says.

    CSV writes nulls as empty fields (the loader reads an empty field as missing) and invalid
    UTF-8 bytes raw; JSONL writes lone surrogates as ``\\udXXX`` escapes.
    """
    import pyarrow.parquet as pq

    out = Path(path)
    fmt = format or format_for(out)
    if fmt not in ("parquet", "csv", "jsonl"):
        raise ValueError(
            f"cannot tell the corpus format of {out}: use a .parquet, .csv or .jsonl extension "
            "or pass format='parquet'|'csv'|'jsonl'"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        pq.write_table(table, out, compression="zstd", row_group_size=ROW_GROUP_ROWS)
        return out
    with _open_text(out) as fh:
        _write_text_rows(fh, table, fmt, header=True)
    return out


def _write_text_rows(fh: IO[str], table: pa.Table, fmt: str, *, header: bool) -> None:
    """Append ``table`` as CSV (with the header row when ``header``) or JSONL."""
    cols = _python_columns(table)
    names = list(cols)
    rows = zip(*(cols[c] for c in names), strict=True)
    if fmt == "csv":
        writer = csv.writer(fh, lineterminator="\n")
        if header:
            writer.writerow(names)
        writer.writerows(rows)
        return
    for row in rows:
        record = dict(zip(names, row, strict=True))
        try:
            line = json.dumps(record, ensure_ascii=False)
            line.encode("utf-8")
        except UnicodeEncodeError:
            line = json.dumps(record, ensure_ascii=True)
        fh.write(line)
        fh.write("\n")


# --------------------------------------------------------------------------------------------
# Streaming: any n in bounded memory
# --------------------------------------------------------------------------------------------
STREAM_CHUNK_ROWS = 200_000  # rows generated and written at a time (~100 MB of Python objects)
_MIN_BYTES_PER_ROW = {"parquet": 25, "csv": 60, "jsonl": 110}  # lower bounds, measured


@dataclass
class GeneratedCorpus:
    """What ``write_generated_corpus`` wrote: counts only, never the rows."""

    path: Path
    rows: int
    per_day: dict[date, int]
    unparseable_ts: int
    levels: dict[str, int]
    domains: dict[str, int]

    def add(self, table: pa.Table) -> None:
        from data.corpus import parse_ts

        us, ok = parse_ts(table.column("ts").combine_chunks())
        day_no, counts = np.unique(us[ok] // 86_400_000_000, return_counts=True)
        for d, c in zip(day_no.tolist(), counts.tolist(), strict=True):
            day = date(1970, 1, 1) + timedelta(days=d)
            self.per_day[day] = self.per_day.get(day, 0) + c
        self.unparseable_ts += int((~ok).sum())
        for name, into in (("expected_level", self.levels), ("expected_domain", self.domains)):
            for vc in pc.value_counts(table.column(name)).to_pylist():
                key = str(vc["values"])
                into[key] = into.get(key, 0) + vc["counts"]
        self.rows += table.num_rows


def write_generated_corpus(
    path: str | Path,
    n: int,
    *,
    seed: int = 42,
    days: int = 7,
    start: date | str = "2026-11-16",
    bad_rows: float = 0.0,
    format: str | None = None,
    tenants: Sequence[str] = DEFAULT_TENANTS,
    chunk_rows: int = STREAM_CHUNK_ROWS,
    progress: Callable[[int], None] | None = None,
) -> GeneratedCorpus:
    """Generate ``n`` rows straight to ``path``, ``chunk_rows`` at a time, so memory does not
    grow with ``n`` (``generate_corpus`` holds the whole table: 1e9 rows needed 15+ GB).

    Up to ``chunk_rows`` the file is exactly ``write_corpus(generate_corpus(...))``. Beyond,
    rows per (day, hour) cell are drawn first (multinomial), then generated cell by cell in
    time order, so the file is still sorted by ``ts`` with the same daily and weekly shape;
    each chunk has its own seeded generator (same seed, same file) and bad rows are planned per
    chunk. The file is written under a temporary name and renamed when complete; a target that
    clearly cannot fit on its disk is refused before any work.
    """
    out = Path(path)
    fmt = format or format_for(out)
    if fmt not in ("parquet", "csv", "jsonl"):
        raise ValueError(
            f"cannot tell the corpus format of {out}: use a .parquet, .csv or .jsonl extension "
            "or pass format='parquet'|'csv'|'jsonl'"
        )
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    start_d = _check_args(n, days, start, bad_rows, tenants)
    out.parent.mkdir(parents=True, exist_ok=True)
    import shutil

    need = n * _MIN_BYTES_PER_ROW[fmt]
    free = shutil.disk_usage(out.parent).free
    if need > free:
        raise ValueError(
            f"{n:,} rows need at least {need / 1e9:,.1f} GB as {fmt}; {out.parent} has "
            f"{free / 1e9:,.1f} GB free"
        )
    summary = GeneratedCorpus(out, 0, {}, 0, {}, {})
    tmp = out.with_name(f".tmp-{os.getpid()}-{out.name}")
    try:
        if n <= chunk_rows:
            table = generate_corpus(n, seed, days, start_d, bad_rows, tenants)
            write_corpus(table, tmp, format=fmt)
            summary.add(table)
        else:
            _stream_chunks(
                tmp, fmt, n, seed, start_d, days, bad_rows, tenants, chunk_rows, summary, progress
            )
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if progress is not None:
        progress(summary.rows)
    return summary


def _segments(
    rng: np.random.Generator, n: int, start: date, days: int, chunk_rows: int
) -> Iterator[tuple[int, int, int, int]]:
    """(cell, first microsecond, end microsecond, rows) in time order; a cell with more rows
    than a chunk is split into equal time slices."""
    counts = rng.multinomial(n, _cell_probs(start, days))
    for cell in np.flatnonzero(counts).tolist():
        c = int(counts[cell])
        k = -(-c // chunk_rows)
        sub = rng.multinomial(c, [1.0 / k] * k) if k > 1 else [c]
        for j, cnt in enumerate(sub):
            if cnt:
                yield cell, j * 3_600_000_000 // k, (j + 1) * 3_600_000_000 // k, int(cnt)


def _stream_chunks(
    tmp: Path,
    fmt: str,
    n: int,
    seed: int,
    start: date,
    days: int,
    bad_rows: float,
    tenants: Sequence[str],
    chunk_rows: int,
    summary: GeneratedCorpus,
    progress: Callable[[int], None] | None,
) -> None:
    import pyarrow.parquet as pq

    plan_rng = np.random.default_rng([seed, 0x5743])
    pool = _popular_pool(np.random.default_rng([seed, 0x9001]))
    start_us = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()) * 10**6
    noop: Callable[[str], None] = lambda _msg: None  # noqa: E731
    writer: Any = None
    fh: IO[str] | None = None
    chunk_no = 0
    try:

        def emit(segs: list[tuple[int, int, int, int]]) -> None:
            nonlocal writer, fh, chunk_no
            rng = np.random.default_rng([seed, chunk_no, 0xC4])
            ts_parts, cell_parts = [], []
            for cell, lo, hi, cnt in segs:
                ts_parts.append(
                    start_us + cell * 3_600_000_000 + np.sort(rng.integers(lo, hi, size=cnt))
                )
                cell_parts.append(np.full(cnt, cell, dtype=np.int64))
            ts = np.concatenate(ts_parts).astype(np.int64)
            work = _work_hours(start, days, np.concatenate(cell_parts))
            table = _rows(
                rng,
                ts,
                work,
                pool,
                seed,
                summary.rows,
                bad_rows,
                tenants,
                noop,
                bad_shape=bad_rows > 0,
            )
            if fmt == "parquet":
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
                writer.write_table(table.cast(writer.schema), row_group_size=ROW_GROUP_ROWS)
            else:
                if fh is None:
                    fh = _open_text(tmp)
                _write_text_rows(fh, table, fmt, header=chunk_no == 0)
            summary.add(table)
            chunk_no += 1
            if progress is not None:
                progress(summary.rows)

        buf: list[tuple[int, int, int, int]] = []
        rows = 0
        for seg in _segments(plan_rng, n, start, days, chunk_rows):
            buf.append(seg)
            rows += seg[3]
            if rows >= chunk_rows:
                emit(buf)
                buf, rows = [], 0
        if buf:
            emit(buf)
    finally:
        if writer is not None:
            writer.close()
        if fh is not None:
            fh.close()
