"""A synthetic spoken StoryCloze, written for speechkit: seeded five-sentence stories, two kinds of negatives, and
offline speech in the released folder layout.

**Stories** come from a small grammar of everyday scenarios (a person, a place, a cause and its effect): each
scenario has a setup sentence and two branches (e.g. forgot the umbrella / took the umbrella), each with three
middle sentences and its own endings (arrived wet / arrived dry); every sentence has wording variants and slots
(names with matching pronouns, places, cities, days, objects, relatives). A seed fixes everything.

- **sSC-like negative**: the same four sentences, then an ending of the *other* branch, which contradicts the
  story. Both branches' endings are correct endings of other stories, so a model cannot spot the negative by its
  novelty, only by its (in)coherence with the causes told before (the original StoryCloze negatives are plausible
  sentences that do not fit the story);
- **tSC-like negative**: the same four sentences, then the (correct) ending of another story from a different
  scenario (TWIST's topic StoryCloze takes a random other ending).

Stories split into a **test** part (crc32 of the text, ~10 %) and a disjoint **train** part, so a text LM or a
unit LM can be trained on train stories and evaluated on test stories.

**Layout** written by :func:`prepare_storycloze` (16 kHz mono, one speaker, sentences synthesised once and joined
with short pauses, so the two files of a pair share their first four sentences exactly)::

    sSC/{i}_correct.wav   sSC/{i}_incorrect.wav
    tSC/{i}_correct.wav   tSC/{i}_incorrect.wav
    stories.jsonl         {"id", "scenario", "branch", "context": [4], "ending", "ssc_ending", "tsc_ending",
                           "tsc_source"}
    README.txt, .complete  (settings; a re-run with the same settings returns at once)
"""

from __future__ import annotations

import json
import random
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Story", "SCENARIOS", "story_stream", "generate_stories", "prepare_storycloze", "prepare_story_speech"]

FEMALE = ["Anna", "Carla", "Emma", "Grace", "Julia", "Laura", "Nina", "Rachel", "Lucy", "Sarah", "Mary", "Helen"]
MALE = ["Ben", "David", "Frank", "Henry", "Kevin", "Michael", "Oliver", "Paul", "Sam", "Tom", "Peter", "James"]
SLOTS = {
    "place": ["market", "library", "office", "park", "station", "museum", "bank", "hospital", "school", "city center"],
    "city": ["London", "Paris", "Boston", "Chicago", "Dallas", "Denver", "Seattle", "Berlin", "Madrid", "Rome"],
    "day": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "time": ["yesterday", "last week", "on Monday", "on Friday", "last summer", "one morning", "after lunch"],
    "relative": ["mother", "father", "sister", "brother", "aunt", "uncle", "grandmother", "cousin"],
    "food": ["eggs", "pasta", "rice", "chicken", "fish", "potatoes", "cheese"],
    "shop": ["bakery", "bookshop", "market", "store", "pharmacy"],
    "gift": ["book", "watch", "lamp", "camera", "scarf", "radio", "picture"],
    "furniture": ["sofa", "bed", "table", "desk", "chair", "shelf"],
    "flowers": ["roses", "tulips", "sunflowers", "daisies"],
    "pet": ["dog", "puppy"],
}

Branch = tuple[list[list[str]], list[str]]

# scenario: setup sentence variants, then two branches; a branch = three middle sentences (variants each) and its
# endings. The ending of one branch contradicts the other branch, and both appear as correct endings of some story.
SCENARIOS: dict[str, tuple[list[str], tuple[Branch, Branch]]] = {
    "rain": (["{Name} walked to the {place} {time}.", "{Name} went to the {place} {time}."], (
        ([["{He} forgot {his} umbrella at home.", "{He} left {his} umbrella by the door."],
          ["On the way it started to rain very hard.", "Halfway there, heavy rain began to fall."],
          ["There was nowhere to hide from the rain.", "{He} had no coat and no place to hide."]],
         ["{He} arrived at the {place} completely wet.", "{He} was soaking wet when {he} got there."]),
        ([["{He} took {his} big umbrella with {him}.", "{He} remembered to bring {his} umbrella."],
          ["On the way it started to rain very hard.", "Halfway there, heavy rain began to fall."],
          ["{He} held the umbrella over {his} head.", "{He} stayed under the umbrella all the way."]],
         ["{He} arrived at the {place} completely dry.", "{He} was warm and dry when {he} got there."]))),
    "hungry": (["{Name} came home very late from work.", "{Name} got home late in the evening."], (
        ([["{He} had not eaten anything since breakfast.", "{He} had skipped lunch that day."],
          ["{He} opened the fridge and found some {food}.", "In the kitchen {he} found some {food}."],
          ["{He} cooked a big meal with the {food}.", "{He} made a large dinner with the {food}."]],
         ["{He} ate everything and felt much better.", "{He} ate the whole meal and was happy."]),
        ([["{He} had eaten a huge dinner with friends.", "{He} had already eaten a big meal in town."],
          ["{He} opened the fridge and found some {food}.", "In the kitchen {he} found some {food}."],
          ["But {he} was still full from dinner.", "{He} felt too full to cook anything."]],
         ["{He} put the {food} back and went to bed.", "{He} did not eat anything and went to sleep."]))),
    "keys": (["{Name} planned to drive to {city} on {day}.", "{Name} wanted to visit {city} on {day}."], (
        ([["In the morning {he} could not find {his} car keys.", "That morning {his} car keys were missing."],
          ["{He} looked under the {furniture} and behind the door.", "{He} searched the {furniture} and the hall."],
          ["At last {he} found them in {his} coat pocket.", "Finally the keys turned up in {his} coat."]],
         ["{He} got in the car and drove to {city}.", "{He} started the car and left for {city}."]),
        ([["In the morning {he} could not find {his} car keys.", "That morning {his} car keys were missing."],
          ["{He} looked under the {furniture} and behind the door.", "{He} searched the {furniture} and the hall."],
          ["The keys were nowhere in the house.", "{He} searched for hours but found nothing."]],
         ["{He} stayed at home and did not go to {city}.", "Without any keys, {he} could not leave for {city}."]))),
    "gift": (["It was the birthday of {Name}'s {relative}.", "{Name}'s {relative} had a birthday on {day}."], (
        ([["{Name} wanted to buy a nice present.", "{Name} wanted to find a special gift."],
          ["{He} went to the {shop} and found a lovely {gift}.", "At the {shop}, {he} chose a new {gift}."],
          ["{He} wrapped the {gift} in colorful paper.", "{He} put the {gift} in a pretty box."]],
         ["{His} {relative} smiled and said thank you for the {gift}.", "{His} {relative} loved the {gift}."]),
        ([["{Name} was very busy at work all week.", "{Name} worked late every day that week."],
          ["{He} did not have time to go to the {shop}.", "The {shop} was closed when {he} finished work."],
          ["{He} arrived at the party without a present.", "{He} came to the party with empty hands."]],
         ["{His} {relative} was a little sad that there was no gift.",
          "{He} said sorry to {his} {relative} for forgetting the gift."]))),
    "train": (["{Name} had an important meeting in {city}.", "{Name} had to be in {city} for a meeting."], (
        ([["{He} woke up late because {his} alarm did not ring.", "{His} alarm was broken, so {he} overslept."],
          ["{He} ran to the station as fast as {he} could.", "{He} hurried to the station without breakfast."],
          ["The train was leaving just as {he} arrived.", "The doors closed just before {he} got there."]],
         ["{He} missed the train and was late for the meeting.", "{He} had to wait for the next train."]),
        ([["{He} woke up very early that morning.", "{His} alarm rang at five in the morning."],
          ["{He} walked slowly to the station.", "{He} had time for coffee on the way to the station."],
          ["The train was waiting when {he} arrived.", "{He} found a seat on the train."]],
         ["{He} arrived at the meeting an hour early.", "{He} got to the meeting with plenty of time."]))),
    "garden": (["{Name} planted {flowers} in {his} garden in the spring.", "{Name} put {flowers} in the garden."], (
        ([["{He} watered them every single morning.", "{He} gave them water and care every day."],
          ["The weather was warm and sunny all summer.", "The summer was long, warm and bright."],
          ["Soon the garden was full of color.", "By July the {flowers} were tall and bright."]],
         ["The neighbors stopped to admire the {flowers}.", "Everyone who walked by loved the garden."]),
        ([["Then {he} went away on a long trip.", "{He} left for three months and forgot about them."],
          ["Nobody watered the garden all summer.", "It did not rain once while {he} was away."],
          ["The ground became dry and hard.", "The sun burned the dry garden."]],
         ["All of the {flowers} died before they could grow.", "When {he} came back, the {flowers} were dead."]))),
    "dog": (["{Name} took {his} {pet} to the park {time}.", "{Name} walked {his} {pet} in the park {time}."], (
        ([["The {pet} ran after a ball near the river.", "The {pet} chased a stick down to the river."],
          ["It jumped into the water and swam around.", "It splashed into the river and swam in circles."],
          ["Then it came back and shook water all over {Name}.", "Then it shook its wet fur right next to {Name}."]],
         ["{Name} laughed and dried the {pet} with a towel.", "{Name} was wet but laughed about it."]),
        ([["The {pet} played on the grass far from the river.", "The {pet} chased a ball on the dry grass."],
          ["It never went near the water.", "It stayed away from the river all day."],
          ["Then it lay down in the sun next to {Name}.", "Then it slept in the sun by {Name}'s feet."]],
         ["{Name} stayed perfectly dry the whole day.", "{Name} and the {pet} went home warm and dry."]))),
    "exam": (["{Name} had a big exam at school on {day}.", "On {day} {Name} had a difficult exam."], (
        ([["{He} studied every evening for two weeks.", "{He} worked hard on it for many evenings."],
          ["{He} went to bed early the night before.", "{He} slept well the night before the exam."],
          ["In the morning {he} felt calm and ready.", "{He} walked into the room feeling ready."]],
         ["{He} passed the exam with a very good grade.", "{He} got one of the best grades in the class."]),
        ([["{He} played games every evening instead of studying.", "{He} never opened a book for two weeks."],
          ["{He} stayed up very late the night before.", "{He} watched movies until three in the morning."],
          ["In the morning {he} was tired and nervous.", "{He} could not answer the first question."]],
         ["{He} failed the exam and had to take it again.", "{He} got the worst grade in the class."]))),
    "cake": (["{Name} decided to bake a cake for the party.", "{Name} wanted to bake a cake for {his} {relative}."], (
        ([["{He} mixed the eggs, butter and sugar in a bowl.", "{He} mixed flour, milk and eggs together."],
          ["Then {he} put the cake in the oven and sat down to read.", "{He} put it in the oven and watched TV."],
          ["{He} forgot about the cake for two hours.", "Two hours passed before {he} remembered it."]],
         ["When {he} came back, the cake was black and burned.", "The kitchen was full of smoke, the cake burned."]),
        ([["{He} mixed the eggs, butter and sugar in a bowl.", "{He} mixed flour, milk and eggs together."],
          ["Then {he} put the cake in the oven and set a timer.", "{He} put it in the oven and watched it closely."],
          ["After forty minutes {he} took it out.", "{He} took it out exactly on time."]],
         ["The cake came out soft, golden and perfect.", "Everyone said it was the best cake they had eaten."]))),
    "car": (["{Name} drove to the {place} {time}.", "{Name} took the car to the {place} {time}."], (
        ([["On the way home the car made a strange noise.", "On the road back the engine made a loud noise."],
          ["Then it stopped in the middle of the road.", "Then the car stopped and would not start again."],
          ["{He} called a mechanic for help.", "{He} phoned the garage and asked for help."]],
         ["The mechanic came and fixed the car in an hour.", "A mechanic repaired the engine by the road."]),
        ([["The car had just been repaired at the garage.", "The mechanic had checked the car the day before."],
          ["The engine ran quietly all the way.", "The road was empty and the drive was easy."],
          ["{He} listened to music on the radio.", "{He} sang along to the radio."]],
         ["{He} got home quickly without any problem.", "{He} parked in front of the house early that evening."]))),
    "job": (["{Name} was looking for a new job in {city}.", "{Name} wanted to find work in {city}."], (
        ([["{He} sent letters to many companies.", "{He} wrote to every company {he} could find."],
          ["One company invited {him} for an interview.", "A big company asked {him} to come and talk."],
          ["{He} answered every question clearly and calmly.", "The interview went very well."]],
         ["A week later they called and offered {him} the job.", "They phoned {him} the next day with a job offer."]),
        ([["{He} sent letters to many companies.", "{He} wrote to every company {he} could find."],
          ["One company invited {him} for an interview.", "A big company asked {him} to come and talk."],
          ["{He} arrived late and could not answer the questions.", "The interview went very badly."]],
         ["The company never called {him} again.", "A week later they wrote that the job was gone."]))),
    "sick": (["{Name} walked home in the snow {time}.", "{Name} walked home on a very cold night."], (
        ([["{He} forgot {his} coat and got very cold.", "{He} had no coat and no hat."],
          ["The next morning {he} had a fever and a bad cough.", "The next day {he} woke up sick and tired."],
          ["{His} {relative} brought {him} hot soup and tea.", "{His} {relative} cooked soup for {him}."]],
         ["After a few days in bed {he} felt healthy again.", "A week later {he} was well again."]),
        ([["{He} wore a warm coat, a hat and gloves.", "{He} was dressed warmly for the cold."],
          ["{He} drank hot tea as soon as {he} got home.", "At home {he} sat by the warm fire."],
          ["{He} slept well all night.", "{He} went to bed early and slept well."]],
         ["The next morning {he} felt healthy and strong.", "{He} was never sick at all that winter."]))),
    "beach": (["{Name} and {his} friends went to the beach on {day}.", "On {day} {Name} went to the beach."], (
        ([["They forgot to bring any sun cream.", "Nobody remembered to pack sun cream."],
          ["They lay in the hot sun all afternoon.", "They stayed in the bright sun for hours."],
          ["In the evening their skin was red and hot.", "By evening their arms and faces were red."]],
         ["They all had a bad sunburn the next day.", "Their sunburn hurt for several days."]),
        ([["They brought sun cream and a big umbrella.", "They put on sun cream every hour."],
          ["They sat in the shade for most of the afternoon.", "They stayed under the umbrella in the heat."],
          ["In the evening they felt fine.", "By evening they were tired but happy."]],
         ["Nobody got a sunburn that day.", "Their skin was fine the next morning."]))),
    "wallet": (["{Name} was shopping at the {shop} {time}.", "{Name} went to the {shop} {time}."], (
        ([["When {he} wanted to pay, {his} wallet was gone.", "At the counter {he} could not find {his} wallet."],
          ["{He} went back along the street to look for it.", "{He} walked back the way {he} came."],
          ["A kind woman had found it near the door.", "An old man had picked it up from the ground."]],
         ["The wallet was given back to {Name} with all the money.", "{Name} got {his} wallet back and said thanks."]),
        ([["{He} held {his} wallet tightly in {his} hand.", "{His} wallet was safe in {his} bag."],
          ["{He} chose some bread and a newspaper.", "{He} picked a few things from the shelves."],
          ["Then {he} went to the counter.", "Then {he} waited in line to pay."]],
         ["{Name} paid with the money in {his} wallet.", "{Name} paid and walked home with the shopping."]))),
    "fishing": (["{Name} went fishing at the river {time}.", "{Name} spent a day fishing by the lake {time}."], (
        ([["{He} sat quietly for hours without catching anything.", "For hours nothing pulled on the line."],
          ["Just before sunset, something pulled hard on the line.", "At sunset the line suddenly pulled."],
          ["{He} pulled it out of the water slowly.", "{He} carefully brought it to the shore."]],
         ["It was the biggest fish {he} had ever caught.", "It was a huge fish, and {he} was very proud."]),
        ([["{He} sat quietly for hours without catching anything.", "For hours nothing pulled on the line."],
          ["The sun went down and it got cold.", "Soon it was dark and the water was quiet."],
          ["{He} packed up {his} things.", "{He} put away {his} fishing rod."]],
         ["{He} went home without a single fish.", "{He} went home with an empty basket."]))),
    "party": (["{Name} wanted to sleep early on {day}.", "{Name} was very tired on {day} night."], (
        ([["{His} neighbors were having a loud party.", "Next door, the neighbors had a big party."],
          ["The music was so loud that the windows shook.", "The music was loud enough to shake the walls."],
          ["{He} could not sleep at all because of the noise.", "{He} lay awake for hours."]],
         ["{He} was very tired and angry the next morning.", "The next day {he} complained to the neighbors."]),
        ([["{His} neighbors were away for the weekend.", "The house next door was empty that night."],
          ["The street outside was dark and still.", "There were no cars on the street."],
          ["{He} went to bed at nine o'clock.", "{He} read a book in bed for a while."]],
         ["The house was perfectly quiet and {he} slept all night.", "{He} fell asleep at once and slept well."]))),
}


@dataclass(frozen=True)
class Story:
    """A five-sentence story: ``context`` (four sentences), its ``ending``, and ``ssc_ending`` (the ending of the
    scenario's other branch, which contradicts this story)."""

    scenario: str
    branch: int
    context: tuple[str, ...]
    ending: str
    ssc_ending: str

    @property
    def text(self) -> str:
        return " ".join((*self.context, self.ending))

    @property
    def split(self) -> str:
        """``"test"`` for about one story in ten (crc32 of the text), else ``"train"``."""
        return "test" if zlib.crc32(self.text.encode()) % 10 == 0 else "train"


def _fill(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)


def _story(rng: random.Random) -> Story:
    scenario = rng.choice(sorted(SCENARIOS))
    setup, branches = SCENARIOS[scenario]
    branch = rng.randrange(2)
    middle, endings = branches[branch]
    female = rng.random() < 0.5
    values = {k: rng.choice(v) for k, v in SLOTS.items()}
    values.update(Name=rng.choice(FEMALE if female else MALE), He="She" if female else "He",
                  he="she" if female else "he", His="Her" if female else "His", his="her" if female else "his",
                  him="her" if female else "him")
    context = (_fill(rng.choice(setup), values), *(_fill(rng.choice(v), values) for v in middle))
    other = branches[1 - branch][1]
    return Story(scenario, branch, context, _fill(rng.choice(endings), values), _fill(rng.choice(other), values))


def story_stream(seed: int = 0, split: str | None = None):
    """Yields distinct stories forever (until the grammar runs dry); ``split`` keeps only ``"train"`` / ``"test"``."""
    rng = random.Random(f"speechkit-stories-{seed}")
    seen: set[str] = set()
    misses = 0
    while misses < 10_000:
        s = _story(rng)
        if s.text in seen or (split is not None and s.split != split):
            misses += s.text in seen
            continue
        misses = 0
        seen.add(s.text)
        yield s


def generate_stories(n: int, seed: int = 0, split: str | None = None) -> list[Story]:
    """The first ``n`` stories of :func:`story_stream`."""
    from speechkit.synth.sentences import take

    return take(story_stream(seed, split), n, f"{split + ' ' if split else ''}stories")


def _speak(sentences, voice, cache: dict, pause: float = 0.25) -> tuple[np.ndarray, int]:
    from speechkit.synth.tts import synthesize

    parts, sr = [], 16000
    for s in sentences:
        if s not in cache:
            syn = synthesize(s, voice)
            cache[s] = (syn.wav, syn.sample_rate)
        wav, sr = cache[s]
        parts += [wav, np.zeros(int(pause * sr), np.float32)]
    return np.concatenate(parts[:-1]), sr


def _complete(root: Path, settings: dict) -> bool:
    marker = root / ".complete"
    return marker.is_file() and json.loads(marker.read_text()) == settings


def prepare_storycloze(root: str | Path, *, pairs: int = 200, seed: int = 0, voice: str = "us2") -> Path:
    """Writes the synthetic spoken StoryCloze (``sSC/``, ``tSC/``, ``stories.jsonl``) from test stories.

    Args:
        root: output folder.
        pairs: stories (one sSC pair and one tSC pair each).
        seed: story seed.
        voice: MBROLA voice (``us1``, ``us2``, ``us3``, ``en1``).

    Returns:
        ``root``. Re-running with the same settings returns at once.
    """
    from speechkit.audio import io as audio_io
    from speechkit.synth.tts import MBROLA_VOICES
    from speechkit.utils.files import atomic_open

    root = Path(root)
    settings = {"pairs": pairs, "seed": seed, "voice": voice, "version": 2}
    if _complete(root, settings):
        return root
    stories = generate_stories(pairs, seed, split="test")
    rng = random.Random(f"speechkit-tsc-{seed}")
    cache: dict = {}
    rows = []
    for i, story in enumerate(stories):
        j = rng.choice([k for k, o in enumerate(stories) if o.scenario != story.scenario])
        files = {("sSC", "correct"): story.ending, ("sSC", "incorrect"): story.ssc_ending,
                 ("tSC", "correct"): story.ending, ("tSC", "incorrect"): stories[j].ending}
        for (bench, label), ending in files.items():
            wav, sr = _speak([*story.context, ending], MBROLA_VOICES[voice], cache)
            audio_io.save(root / bench / f"{i}_{label}.wav", wav, sr)
        rows.append({"id": i, "scenario": story.scenario, "branch": story.branch, "context": list(story.context),
                     "ending": story.ending, "ssc_ending": story.ssc_ending, "tsc_ending": stories[j].ending,
                     "tsc_source": j})
    with atomic_open(root / "stories.jsonl") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    with atomic_open(root / "README.txt") as f:
        f.write("Synthetic spoken StoryCloze made by speechkit (speechkit.synth.storycloze).\n"
                f"Settings: {json.dumps(settings)}\nsSC: contradicting fifth sentence; tSC: ending of another "
                "story. Pairs: {i}_correct.wav / {i}_incorrect.wav. MBROLA voices: non-commercial use only.\n")
    (root / ".complete").write_text(json.dumps(settings))
    return root


def prepare_story_speech(root: str | Path, *, stories: int = 300, seed: int = 0,
                         voices: tuple[str, ...] = ("us1", "us2", "us3", "en1"),
                         shard: tuple[int, int] = (0, 1)) -> Path:
    """Speech of train stories (never test ones) for unit-LM training: ``audio/{voice}_{i:05d}.wav`` and
    ``transcripts.tsv`` (``id<TAB>text``); voices take turns.

    Args:
        shard: ``(i, n)``: speak only stories ``k`` with ``k % n == i``, so ``n`` processes share the work. Every
            shard writes the whole ``transcripts.tsv`` (it depends on the settings only); the folder is marked
            complete by whichever shard finds every file there.

    A killed run resumes where it stopped: each wav is written atomically and stories already spoken are skipped.

    Returns:
        ``root``. Re-running with the same settings returns at once.
    """
    from speechkit.audio import io as audio_io
    from speechkit.errors import SpeechkitError
    from speechkit.synth.tts import MBROLA_VOICES
    from speechkit.utils.files import atomic_open

    index, count = shard
    if not (count >= 1 and 0 <= index < count):
        raise SpeechkitError(f"shard {index}/{count}: needs 0 <= i < n")
    unknown = [v for v in voices if v not in MBROLA_VOICES]
    if unknown:
        raise SpeechkitError(f"voices {unknown}: not MBROLA voices of speechkit ({sorted(MBROLA_VOICES)})")
    root = Path(root)
    settings = {"stories": stories, "seed": seed, "voices": list(voices), "version": 2}
    if _complete(root, settings):
        return root
    caches: dict[str, dict] = {v: {} for v in voices}
    lines, utts = [], []
    for i, story in enumerate(generate_stories(stories, seed, split="train")):
        voice = voices[i % len(voices)]
        utt = f"{voice}_{i:05d}"
        lines.append(f"{utt}\t{story.text}\n")
        utts.append(utt)
        path = root / "audio" / f"{utt}.wav"
        if i % count != index or path.is_file():
            continue
        if len(caches[voice]) > 2000:  # sentences recur across stories; bound the memory of long runs
            caches[voice].clear()
        wav, sr = _speak([*story.context, story.ending], MBROLA_VOICES[voice], caches[voice])
        audio_io.save(path, wav, sr)
    with atomic_open(root / "transcripts.tsv") as f:
        f.writelines(lines)
    if not all((root / "audio" / f"{u}.wav").is_file() for u in utts):
        return root  # other shards still speaking
    (root / ".complete").write_text(json.dumps(settings))
    return root
