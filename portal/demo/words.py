"""Synthetic names, staff numbers and words: what a reporter might write, never real. A person's name and number
are a bijection of their serial, so each is unique and the same for the same seed."""

from __future__ import annotations

import math

FIRST_NAMES = (
    "Aaliyah Abdul Adaeze Adam Adebayo Aditi Ahmed Aisha Alan Alex Alice Amara Amir Amy Andrew Angela Anil Anna "
    "Arjun Asha Ayesha Barbara Ben Bilal Bola Callum Carla Caroline Catherine Chanel Charlotte Chidi Chloe Chris "
    "Claire Connor Craig Dalia Daniel Darren Deepa Dev Dominic Donna Duncan Ebony Eleanor Emeka Emily Emma Eric "
    "Esther Fatima Femi Fiona Folake Gareth Gemma Georgia Gurpreet Hamza Hannah Harpreet Harvey Hassan Helen Hollie "
    "Ibrahim Imran Isabel Jack Jade Jamal Jasmine Jason Jaspreet Jennifer Joanne Jordan Joseph Joy Julie Karen "
    "Kareem Kate Kayode Keisha Kelly Kemi Kevin Kofi Lakshmi Laura Leah Liam Lisa Lorna Lucy Mandeep Marcus "
    "Maria Mark Martin Maya Mehmet Michelle Mohammed Nadia Naomi Natasha Neil Nia Nicola Nikhil Nkechi Oliver "
    "Olivia Omar Paul Pooja Precious Priya Rachel Rahul Rajesh Rebecca Rhys Richard Rosa Ruth Ryan Sadia Samir "
    "Sandeep Sarah Scott Shanice Simon Sophie Stacey Stephen Stuart Sunil Tanisha Tariq Temi Tom Tunde Usha "
    "Vanessa Vikram Wayne Yasmin Yusuf Zainab Zara Zoe"
).split()
LAST_NAMES = (
    "Abbott Achebe Adams Adeyemi Afolabi Ahmadi Akhtar Ali Allen Anderson Appiah Armstrong Asante Atkinson Bailey "
    "Baker Banerjee Barker Barnes Begum Bell Bennett Bhatt Bishop Boateng Bond Bose Bradley Brooks Brown Burke "
    "Butler Campbell Carter Chambers Chaudhry Chen Chowdhury Clarke Cole Collins Cook Cooper Cox Cunningham "
    "Davies Dawson Desai Dixon Doherty Douglas Doyle Dunn Edwards Ellis Evans Farah Fernandes Fisher Fleming "
    "Fletcher Foster Fox Francis Fraser Gardner Ghosh Gibson Gill Gordon Graham Grant Gray Green Griffiths Gupta "
    "Hall Hamilton Harris Hart Harvey Hayes Henry Hill Holmes Hughes Hunt Hussain Iqbal Jackson Jama Jenkins "
    "Johnson Jones Joshi Kamara Kaur Kelly Kennedy Khan Khanom King Knight Kumar Lawrence Lewis Lloyd Malik "
    "Marshall Mason Matthews Mensah Miah Miller Mills Mistry Mitchell Moore Morgan Morris Murphy Murray Nair "
    "Nwosu Obi Odhiambo Okafor Okeke Oladipo Osei Owen Owusu Palmer Parker Patel Payne Pearson Perry Phillips "
    "Powell Price Qureshi Rahman Rai Reid Reynolds Richards Roberts Robinson Rogers Rose Russell Saini Sandhu "
    "Saunders Scott Sesay Shah Sharma Shaw Simpson Singh Smith Spencer Stevens Stewart Stone Sutton Taylor "
    "Thomson Turner Uddin Vaughan Verma Walker Wallace Walsh Ward Watson Webb Wells West White Wilkinson Williams "
    "Wilson Wood Wright Yeboah Young"
).split()
_INITIALS = "ABCDEFGHJKLMNPRSTW"
# One or two middle initials, the pair in alphabetical order: names normalise with their words sorted,
# so "J K" and "K J" would be the same person to the blind index.
MIDDLES = list(_INITIALS) + [f"{a} {b}" for i, a in enumerate(_INITIALS) for b in _INITIALS[i + 1 :]]
NAME_SPACE = len(FIRST_NAMES) * len(MIDDLES) * len(LAST_NAMES)
STAFF_NUMBER_SPACE = 10_000_000
STATIONS = (
    "Brixton Charing Cross Croydon Ealing Hackney Hammersmith Holborn Ilford Islington Kentish Town Lewisham "
    "Lambeth Paddington Peckham Romford Southwark Stoke Newington Sutton Tottenham Walworth Wembley Wimbledon "
    "Woolwich"
).split()
PLACES = (
    "front office",
    "custody suite",
    "parade room",
    "canteen",
    "car park",
    "patrol car",
    "team office",
    "training centre",
    "a pub after work",
    "a team messaging group",
    "social media",
    "the locker room",
)
SUMMARIES = {
    "sexual-misconduct": (
        "Sexual comments and unwanted touching of a junior colleague",
        "Officer pursuing a victim of crime for a relationship",
        "Explicit images shared in a team chat",
        "Repeated requests to meet a probationer after shifts",
    ),
    "domestic-abuse": (
        "Controlling behaviour towards a partner who is also in the force",
        "Officer reported for abuse at home, still on frontline duties",
        "Threats made to an ex-partner using police information",
    ),
    "discrimination": (
        "Racist remarks about a colleague in the parade room",
        "Misogynistic jokes in team briefings",
        "Homophobic messages in a team chat",
        "Colleague mocked for a disability in front of the team",
        "Different treatment of Black and Asian officers on postings",
    ),
    "bullying": (
        "Repeated belittling of a staff member in team meetings",
        "Supervisor singling out a colleague for unfair tasks",
        "Victimisation after a grievance was raised",
        "Shouting and intimidation on night shifts",
    ),
    "corruption": (
        "Police systems searched for a friend's benefit",
        "Undeclared association with a known criminal",
        "Overtime claimed for hours not worked",
        "Information passed to a journalist for payment",
    ),
    "criminality": (
        "Drink driving off duty",
        "Theft of seized property",
        "Assault outside a nightclub while off duty",
        "Possession of controlled drugs",
    ),
    "use-of-force": (
        "Excessive force during an arrest",
        "Handcuffed detainee struck in custody",
        "Taser used on a compliant person",
    ),
    "discreditable-conduct": (
        "Offensive posts on social media",
        "Abusive behaviour towards members of the public",
        "Misleading statement given to a supervisor",
        "Drunk and disorderly at a police social event",
    ),
    "duties": (
        "Body-worn video routinely switched off",
        "Calls left unanswered on shift",
        "Repeatedly late and absent without leave",
        "Property records not completed",
    ),
    "other": (
        "Concern about a colleague's conduct at a training course",
        "Confidential information left on a shared desk",
        "Unauthorised secondary employment",
    ),
}
DETAIL_OPENINGS = (
    "This has been going on for several months.",
    "I saw this myself on more than one occasion.",
    "Several colleagues have noticed but nobody has said anything.",
    "It happened during a late turn and there were others present.",
    "I raised it informally with a supervisor but nothing changed.",
    "I am worried about what will happen if I am identified.",
)
DETAIL_MIDDLES = (
    "The person laughed it off when challenged and said it was banter.",
    "It has affected the team and one colleague has gone off sick.",
    "There are messages on a team chat that show it.",
    "A member of the public complained about the same behaviour.",
    "It seems to happen mostly when senior officers are not around.",
    "I have kept notes of dates and times.",
    "The person has been spoken to before about similar things.",
)
DETAIL_CLOSINGS = (
    "I would like someone to look at this properly.",
    "I can give more details if you ask me questions here.",
    "Other people on the team may be willing to speak to you.",
    "I do not want this to be dealt with by my own command.",
)
RATIONALES = {
    "nfa": "No breach of the standards is indicated on the information available.",
    "practice-requiring-improvement": "Performance below standard; reflective practice is proportionate.",
    "misconduct": "A breach of the standards of professional behaviour that would justify disciplinary action.",
    "gross-misconduct": "A breach so serious that dismissal would be justified if it is proven.",
}


def _scramble(serial: int, space: int, salt: int) -> int:
    """A bijection on [0, space): neighbouring serials get unrelated names and numbers."""
    multiplier = 7_919 if space % 7_919 else 104_729
    while math.gcd(multiplier, space) != 1:
        multiplier += 2
    return (serial * multiplier + salt) % space


def staff_number_for(person: int, salt: int) -> str:
    """A synthetic staff number, unique per person: 'MP' and seven digits."""
    return f"MP{_scramble(person, STAFF_NUMBER_SPACE, salt):07d}"


def name_for(person: int, salt: int) -> str:
    """A synthetic name, unique per person up to NAME_SPACE and still unique once normalised."""
    code = _scramble(person % NAME_SPACE, NAME_SPACE, salt)
    code, first = divmod(code, len(FIRST_NAMES))
    last, middle = divmod(code, len(MIDDLES))
    name = f"{FIRST_NAMES[first]} {MIDDLES[middle]} {LAST_NAMES[last]}"
    return name if person < NAME_SPACE else f"{name} {person // NAME_SPACE + 1}"
