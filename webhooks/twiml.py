"""TwiML documents the hub answers with, built only through `twilio.twiml`."""
from __future__ import annotations

from twilio.twiml.voice_response import Dial, VoiceResponse

CONFERENCE_EVENTS = "start end join leave"


def _conference(name: str, conference_url: str, *, starts: bool = False, wait_url: str | None = None,
                beep: bool = True) -> Dial:
    """A <Dial><Conference> named after the customer's CallSid that ends when this participant leaves.

    The party who waits (caller, lead) does not start it: they hear `wait_url` until the agent's leg, which
    starts it, joins. Every join and leave is posted to `conference_url`.
    """
    options: dict = {"wait_url": wait_url, "wait_method": "POST"} if wait_url else {}
    if not beep:
        options["beep"] = False
    dial = Dial()
    dial.conference(name, start_conference_on_enter=starts, end_conference_on_exit=True,
                    status_callback=conference_url, status_callback_event=CONFERENCE_EVENTS, **options)
    return dial


def wait_for_agent(queue_name: str, conference: str, hold_url: str, conference_url: str,
                   greeting: str | None = None) -> str:
    """Greet the caller and hold them in their own conference until an agent joins."""
    response = VoiceResponse()
    response.say(greeting or f"Thank you for calling {queue_name}. Please hold for the next available agent.")
    response.append(_conference(conference, conference_url, wait_url=hold_url))
    return str(response)


def cannot_take_call() -> str:
    response = VoiceResponse()
    response.say("Sorry, we cannot take your call right now. Please try again later.")
    response.hangup()
    return str(response)


def hold_loop(queue_name: str) -> str:
    """What a waiting caller hears, over and over, until an agent joins."""
    response = VoiceResponse()
    response.say(f"All our {queue_name} agents are busy. Your call is important to us; please stay on the line.")
    response.pause(length=10)
    return str(response)


def hold_music() -> str:
    """What a customer put on hold by their agent hears, over and over, until they are taken off hold."""
    response = VoiceResponse()
    response.say("Please hold. Your agent will be right back with you.")
    response.pause(length=15)
    return str(response)


def join_caller(conference: str, conference_url: str) -> str:
    """Put the agent's answered leg into the caller's conference, which starts it."""
    response = VoiceResponse()
    response.append(_conference(conference, conference_url, starts=True, beep=False))
    return str(response)


def caller_gone() -> str:
    response = VoiceResponse()
    response.say("The caller has hung up.")
    response.hangup()
    return str(response)


def empty() -> str:
    return str(VoiceResponse())


def voicemail(record_url: str) -> str:
    """Invite the caller to leave a message; the recording is posted to `record_url`."""
    response = VoiceResponse()
    response.say("Sorry, nobody can take your call right now. Please leave a message after the tone.")
    response.record(max_length=120, play_beep=True, action=record_url, method="POST")
    response.say("We did not get a message. Goodbye.")
    response.hangup()
    return str(response)


def goodbye() -> str:
    response = VoiceResponse()
    response.say("Thank you. We will get back to you. Goodbye.")
    response.hangup()
    return str(response)


def callback_offer(choice_url: str, closed: bool) -> str:
    """Offer a callback: press 1 and keep your place in line without holding."""
    response = VoiceResponse()
    gather = response.gather(num_digits=1, action=choice_url, method="POST", timeout=6)
    if closed:
        gather.say("We are closed right now. Press 1 and we will call you back when we open. "
                   "Or stay on the line to leave a message.")
    else:
        gather.say("Sorry for the wait. Press 1 and we will call you back when it is your turn; "
                   "you keep your place in line. Or stay on the line to keep holding.")
    response.redirect(choice_url, method="POST")
    return str(response)


def callback_booked() -> str:
    response = VoiceResponse()
    response.say("Thank you. We will call you back at this number when it is your turn. Goodbye.")
    response.hangup()
    return str(response)


def callback_cancelled() -> str:
    response = VoiceResponse()
    response.say("Sorry, we could not connect you to an agent just now. We will try again. Goodbye.")
    response.hangup()
    return str(response)


def connect_lead(conference: str, wait_url: str, conference_url: str) -> str:
    """A campaign's lead answered and an agent is on the way: into the call's conference, in silence."""
    response = VoiceResponse()
    response.append(_conference(conference, conference_url, wait_url=wait_url, beep=False))
    return str(response)


def message_then_hang_up(message: str) -> str:
    """The recorded identification message (abandoned call) or a machine message, then goodbye."""
    response = VoiceResponse()
    if message:
        response.say(message)
    response.hangup()
    return str(response)


def silence() -> str:
    response = VoiceResponse()
    response.pause(length=30)
    return str(response)
