"""A seeded generator of everyday English sentences, written for speechkit (no copied text).

Sentences come from a small grammar: templates whose slots are filled from word lists (people, objects, places,
times, activities, weather, ...). The combinations run into the millions, so thousands of distinct sentences come
out of a few hundred words. The vocabulary is plain and common so that a generic ASR model (pocketsphinx en-us)
recognises synthetic speech of it reasonably well.

Example:
    >>> sents = generate_sentences(5, seed=0)
    >>> len(set(generate_sentences(5000, seed=0)))
    5000
"""

from __future__ import annotations

import random
import re

__all__ = ["generate_sentences", "sentence_stream"]

NAMES = [
    "Anna", "Ben", "Carla", "David", "Emma", "Frank", "Grace", "Henry", "Julia", "Kevin", "Laura", "Michael",
    "Nina", "Oliver", "Paul", "Rachel", "Sam", "Tom", "Lucy", "Peter", "Sarah", "John", "Mary", "James",
]
RELATIVES = ["mother", "father", "sister", "brother", "aunt", "uncle", "cousin", "grandmother", "neighbor", "friend"]
ANIMALS = ["dog", "cat", "horse", "bird", "rabbit", "duck", "goat", "fox", "mouse", "cow"]
OBJECTS = [
    "book", "phone", "bag", "key", "coat", "hat", "letter", "box", "lamp", "chair", "table", "cup", "bottle",
    "ticket", "camera", "watch", "map", "pen", "umbrella", "blanket", "basket", "radio", "picture", "ball",
]
FOODS = [
    "bread", "soup", "rice", "cheese", "apples", "coffee", "tea", "milk", "eggs", "fish", "chicken", "cake",
    "pasta", "salad", "oranges", "potatoes", "butter", "honey", "pizza", "sandwiches",
]
ADJECTIVES = [
    "old", "new", "small", "big", "red", "blue", "green", "warm", "cold", "heavy", "quiet", "clean", "bright",
    "dark", "long", "short", "young", "happy", "busy", "strange", "lovely", "simple", "yellow", "soft",
]
PLACES = [
    "kitchen", "garden", "office", "station", "market", "library", "school", "park", "hospital", "bank",
    "garage", "hotel", "museum", "church", "airport", "beach", "river", "village", "city", "farm", "shop",
]
FURNITURE = ["table", "bed", "sofa", "shelf", "desk", "door", "window", "chair", "stairs", "car"]
PREPOSITIONS = ["on", "under", "behind", "near", "next to", "in front of", "beside"]
PAST_TIMES = [
    "yesterday", "last night", "this morning", "last week", "on Monday", "on Tuesday", "on Friday", "on Sunday",
    "after lunch", "before dinner", "at noon", "in the afternoon", "last month", "last summer", "two days ago",
    "last winter", "an hour ago",
]
FUTURE_TIMES = [
    "tomorrow", "tonight", "this evening", "next week", "next month", "on Monday", "on Friday", "on Sunday",
    "after lunch", "before dinner", "at noon", "in the afternoon", "next summer", "in the morning", "soon",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
CITIES = ["London", "Paris", "Boston", "Chicago", "Dallas", "Denver", "Seattle", "Miami", "Berlin", "Madrid", "Rome"]
WEATHER = ["sunny", "cloudy", "rainy", "windy", "cold", "warm", "hot", "foggy", "snowy", "dry"]
NUMBERS = ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twelve", "twenty"]
ACTIVITIES = [
    "read", "cook", "swim", "walk", "sing", "dance", "paint", "draw", "run", "write", "travel", "work", "sleep",
    "play music", "watch movies", "go fishing", "ride a bike", "play cards", "plant flowers", "bake bread",
]
TASKS = [
    "close the window", "lock the door", "call the doctor", "water the plants", "feed the dog", "clean the kitchen",
    "buy some milk", "wash the car", "send the letter", "pay the bill", "turn off the lights", "pack the bags",
    "fix the chair", "open the box", "read the map", "check the time", "find the keys", "cook the dinner",
    "take out the trash", "bring an umbrella", "wake up early", "answer the phone", "clean the windows",
]
PAST_EVENTS = [
    "missed the train", "lost the keys", "found a wallet", "broke a cup", "won the game", "painted the fence",
    "cooked a big dinner", "forgot the tickets", "fixed the radio", "sold the old car", "moved to a new house",
    "planted a tree", "wrote a long letter", "visited the museum", "cleaned the garage", "called an old friend",
    "bought a new coat", "read the whole book", "walked to the station", "fell asleep on the sofa",
]
FEELINGS = ["tired", "hungry", "happy", "worried", "excited", "sleepy", "cold", "busy", "late", "ready", "calm"]
REASONS = [
    "it was raining", "the bus was late", "the shop was closed", "we had no time", "the road was blocked",
    "the phone was broken", "the door was locked", "it was too cold", "the room was dark", "the car would not start",
]
SHOPS = ["market", "bakery", "shop", "store", "station", "pharmacy", "bookshop"]


SLOTS = {
    "name": NAMES, "relative": RELATIVES, "animal": ANIMALS, "object": OBJECTS, "food": FOODS,
    "adjective": ADJECTIVES, "place": PLACES, "furniture": FURNITURE, "prep": PREPOSITIONS,
    "past_time": PAST_TIMES, "future_time": FUTURE_TIMES, "day": DAYS, "city": CITIES, "weather": WEATHER,
    "number": NUMBERS, "activity": ACTIVITIES, "task": TASKS, "past_event": PAST_EVENTS, "feeling": FEELINGS,
    "reason": REASONS, "shop": SHOPS,
    "deadline": ["lunch", "dinner", "noon", "the meeting", "we leave", "it gets dark"],
    "things": ["apples", "books", "cups", "tickets", "eggs", "pens", "oranges"],
    "meal": ["lunch", "dinner", "breakfast", "the party"],
    "verb": ["leave", "stop", "call", "wait", "laugh", "run"],
    "manner": ["early", "late", "fast", "suddenly", "quietly"],
    "when": ["in the morning", "on weekdays", "on Sundays", "every day"],
    "dish": ["plate", "bowl", "basket", "oven", "fridge", "table"],
    "comparative": ["older", "newer", "smaller", "bigger", "heavier", "cleaner"],
}

TEMPLATES = [
    "{name} {past_event} {past_time}.",
    "The {adjective} {object} is {prep} the {furniture}.",
    "Can you {task} before {deadline}?",
    "My {relative} likes to {activity} on {day}.",
    "It will be {weather} in {city} {future_time}.",
    "I left my {object} {prep} the {furniture}.",
    "{name} bought {number} {things} at the {shop}.",
    "Please remember to {task} {future_time}.",
    "Did you see the {adjective} {animal} in the {place}?",
    "We were {feeling} because {reason}.",
    "{name} and {name} went to the {place} {past_time}.",
    "There is {a_adjective} {animal} {prep} the {furniture}.",
    "We need some {food} and some {food} for {meal}.",
    "Why did {name} {verb} so {manner}?",
    "The {place} opens at {number} {when}.",
    "I think my {relative} was {feeling} {past_time}.",
    "{name} wants to {activity} with {name} {future_time}.",
    "Put the {food} {prep} the {dish}, please.",
    "The train to {city} leaves in {number} minutes.",
    "Our {adjective} {object} is much {comparative} than yours.",
    "Where did you put the {adjective} {object}?",
    "{name} {past_event} because {reason}.",
    "If it is {weather} {future_time}, we will {activity} in the {place}.",
    "My {relative} {past_event} and felt {feeling}.",
]
_SLOT = re.compile(r"\{(\w+)\}")


def _fill(match: re.Match, rng: random.Random) -> str:
    slot = match.group(1)
    if slot == "a_adjective":  # indefinite article agreeing with the adjective
        word = SLOTS["adjective"][rng.randrange(len(SLOTS["adjective"]))]
        return ("an " if word[0] in "aeiou" else "a ") + word
    words = SLOTS[slot]
    return words[rng.randrange(len(words))]


def _sentence(rng: random.Random) -> str:
    template = TEMPLATES[rng.randrange(len(TEMPLATES))]
    return _SLOT.sub(lambda m: _fill(m, rng), template)


def sentence_stream(seed: int = 0):
    """Yields distinct sentences forever (until the grammar runs out, far beyond any corpus size).

    Args:
        seed: the same seed always gives the same sequence.
    """
    rng = random.Random(f"speechkit-sentences-{seed}")
    seen: set[str] = set()
    misses = 0
    while misses < 10_000:
        s = _sentence(rng)
        if s in seen:
            misses += 1
            continue
        misses = 0
        seen.add(s)
        yield s


def generate_sentences(n: int, seed: int = 0) -> list[str]:
    """Returns the first ``n`` distinct sentences of :func:`sentence_stream` for ``seed``.

    Args:
        n: how many sentences.
        seed: generator seed.

    Returns:
        ``n`` distinct sentences, each a capitalised English sentence ending in ``.`` or ``?``.
    """
    return take(sentence_stream(seed), n, "sentences")


def take(stream, n: int, what: str) -> list:
    """The first ``n`` items of a generator stream; a ``ValueError`` names ``what`` ran out."""
    if n < 0:
        raise ValueError(f"n must be >= 0. Found {n}")
    out = []
    for item in stream:
        if len(out) == n:
            break
        out.append(item)
    if len(out) < n:
        raise ValueError(f"the grammar yields fewer than {n} distinct {what}")
    return out
