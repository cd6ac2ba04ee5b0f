"""The words that name each edit kind: looked up exactly, and embedded as prototypes for words not here.

General English vocabulary of prompts (colours, materials, art media, places, weather, shot types,
verbs of motion, counts and positions), not a list fitted to any test set. A word missing here is
classified by its nearest entries in MiniLM's embedding space (``chorus.reuse.edit_kind``), so the lists
need to be representative, not complete.
"""

from __future__ import annotations

APPEARANCE = """
red green blue yellow orange purple pink black white gray grey brown beige golden gold silver violet
magenta cyan turquoise teal navy maroon crimson scarlet amber ivory tan khaki lavender indigo sandy
colorful colourful multicolored monochrome pastel neon vibrant dark bright pale vivid faded rainbow
wooden wood metal metallic steel iron glass plastic stone marble ceramic porcelain paper cardboard
clay plasticine wool knitted leather velvet silk cotton fabric rubber concrete brick bronze copper
crystal ice chocolate cookie water fur furry fluffy shiny glossy matte rusty smooth rough striped
checkered checkerboard stripes spotted plaid textured transparent translucent glowing sparkling
lit lighting sunlit backlit candlelight moonlit shadow shadows silhouette glow dim
painting painted drawing drawn sketch sketched illustration illustrated cartoon anime animated comic
watercolor watercolour oil canvas acrylic pastel charcoal pencil crayon ink woodcut engraving etching
mosaic collage graffiti mural pixel voxel voxels lowpoly render rendered photograph photo photorealistic
realistic cinematic vintage retro sepia polaroid film noir style styled art artwork artistic abstract
surreal surrealism surrealist impressionist impressionism cubism cubist expressionism pointillism
pointilism minimalist baroque renaissance gothic steampunk cyberpunk vaporwave psychedelic ukiyo
hokusai gogh monet picasso rembrandt dali vermeer warhol klimt hopper matisse kahlo banksy
minecraft lego claymation emoji icon logo sticker stained statue sculpture origami embroidery
"""

IDENTITY = """
person man woman boy girl child baby kid people adult teenager lady gentleman king queen soldier
astronaut chef doctor robot alien monster dragon unicorn ghost skeleton zombie wizard knight
dog cat horse cow sheep pig goat chicken duck bird owl eagle parrot penguin fish shark whale dolphin
bear panda tiger lion elephant giraffe zebra monkey rabbit squirrel fox wolf deer mouse rat frog
turtle snake lizard butterfly bee spider ant crab lobster octopus kangaroo koala camel raccoon
car truck bus train bicycle bike motorcycle boat ship airplane plane helicopter rocket tractor van
chair table sofa couch bed lamp clock vase bottle cup mug bowl plate teapot kettle spoon fork knife
book phone laptop computer television keyboard guitar piano violin drum ball balloon umbrella hat
shoe bag box kite toy teddy doll flag sign candle mirror door window key ring watch camera
apple banana orange pizza burger sandwich cake cookie bread egg tomato carrot strawberry coffee
tree flower rose tulip sunflower cactus leaf plant mushroom rock shell
circle square triangle cube sphere star heart
"""

SCENE = """
background backdrop scene setting landscape scenery environment surroundings
beach ocean sea lake river waterfall forest jungle desert mountain mountains hill valley canyon cliff
meadow field farm garden park island cave volcano glacier swamp prairie savanna countryside
city town village street road alley highway bridge downtown skyline harbor port market
kitchen bedroom bathroom living room office classroom library museum gallery restaurant cafe bar
shop store mall church temple castle palace stadium airport station subway hospital school plaza
space mars moon underwater sky horizon outdoors indoors home house apartment studio
rain rainy raining snow snowy snowing fog foggy mist misty storm stormy thunderstorm cloudy sunny
windy overcast hazy blizzard drizzle weather
night nighttime midnight day daytime morning noon afternoon evening dusk dawn sunrise sunset twilight
spring summer autumn fall winter christmas
"""

CAMERA = """
camera shot angle view perspective viewpoint lens zoom pan panning tilt tilting dolly tracking
orbit orbiting crane handheld steadicam aerial drone overhead closeup close-up close macro wide telephoto
fisheye panoramic panorama establishing pov first-person third-person bird's-eye low-angle high-angle
focus rack racking bokeh blur blurry depth shaking shaky steady static fixed framing frame
portrait landscape-mode selfie footage
"""

MOTION = """
walking running jumping flying swimming dancing driving riding sitting standing climbing crawling
falling rising rolling spinning turning moving sliding gliding floating drifting bouncing hopping
galloping trotting skating skiing surfing diving sailing rowing eating drinking cooking reading
writing painting playing singing clapping waving kicking throwing catching pushing pulling lifting
carrying holding chasing fighting hugging kissing laughing crying sleeping waking stretching sweeping
cleaning washing typing knitting marching wrestling boxing exercising stirring pouring cutting
slicing chopping peeling opening closing folding
walk walks run runs jump jumps fly flies swim swims dance dances drive drives ride rides climb climbs
fall falls rise rises roll rolls spin spins turn turns move moves slide slides glide glides float
floats bounce bounces hop hops gallop gallops chase chases fight fights throw throws kick kicks
slow slowly fast quickly rapidly swiftly gently steadily suddenly gradually speed speeding speeds
motion timelapse time-lapse
leftward leftwards rightward rightwards upward upwards downward downwards forward forwards backward
backwards clockwise counterclockwise anticlockwise toward towards away across
"""

LAYOUT = """
one two three four five six seven eight nine ten eleven twelve dozen dozens hundred several many
few single multiple pair pile group crowd couple bunch herd flock swarm
small large big tiny giant huge little tall short wide narrow enormous massive miniature
left right front back behind above below under beneath over top bottom beside next near between
center centre middle corner edge inside outside onto atop
"""

# Position and direction words are read by their context: after a camera verb they are camera
# motion ("pan left"), after a verb of motion a direction ("moving left"), else a position.
DIRECTIONAL = frozenset("left right up down in out above below front back forward backward backwards".split())
CAMERA_ONLY = frozenset("in out".split())  # "zoom in"; elsewhere "in" is a preposition
PROGRESSIVE = frozenset("is are was were".split())  # "a person is <verb>ing": the -ing word is an action
CAMERA_VERBS = frozenset(
    """pan panning pans tilt tilting tilts zoom zooming zooms dolly orbit orbits
    camera view shot angle perspective from""".split()
)
# Function words carry no kind of their own; spatial prepositions count as a position edit only when
# nothing else in the hunk names a kind ("on the table" -> "under the table").
STOPWORDS = frozenset(
    """a an the and or of with is are was were be been being it its it's this that these those
    their his her them they he she to at by for as while then there which who very so too just
    s into onto""".split()
)
PREPOSITIONS = frozenset("on in under over above below behind beside near inside outside between onto".split())
# The words that precede or follow a style's name ("in the style of Hokusai", "in cyberpunk style").
STYLE_CUES = frozenset("style styled painting art by".split())
# A side of a hunk that names a style ("Van Gogh style", "pixel art") is one appearance phrase.
STYLE_HEADS = frozenset("style styled art".split())

KINDS_WORDS: dict[str, frozenset[str]] = {
    "appearance": frozenset(APPEARANCE.split()),
    "identity": frozenset(IDENTITY.split()),
    "scene": frozenset(SCENE.split()),
    "camera": frozenset(CAMERA.split()),
    "motion": frozenset(MOTION.split()),
    "layout": frozenset(LAYOUT.split()),
}
