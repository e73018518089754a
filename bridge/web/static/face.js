// The face of `vadbridge preview`, in the browser: a port of bridge/tools/preview_face.py (the
// geometry, rule for rule; tests/test_panel_browser.py compares the two on random weights) and
// of preview_draw.draw_face (the drawing). The face lives in a box x in [-1, 1],
// y in [-1.25, 1.1], y up; the subject's left (ARKit "...Left") is on the viewer's right.

const CURVE_POINTS = 25;
const BROW_Y = 0.5;
const EYE_Y = 0.22, EYE_X = 0.36, EYE_HALF_WIDTH = 0.17;
const EYE_OPEN_UP = 0.085, EYE_OPEN_DOWN = 0.06;
const IRIS_RADIUS = 0.062;
const MOUTH_Y = -0.5, MOUTH_HALF_WIDTH = 0.27;
const CHEEK_X = 0.56, CHEEK_Y = -0.18, CHEEK_RADIUS = 0.12;
const NOSE_Y = -0.12;
const SIDES = { Left: 1.0, Right: -1.0 };

function linspace(low, high, count) {
  const step = (high - low) / (count - 1);
  return Array.from({ length: count }, (_, i) => (i === count - 1 ? high : low + i * step));
}

// weights: 52 numbers in `names` order (ARKIT_NAMES); values are clipped to [0, 1].
function reader(weights, names) {
  if (weights.length !== names.length) {
    throw new Error(`expected ${names.length} blendshape weights, got ${weights.length}`);
  }
  const byName = new Map(names.map((name, i) => [name, Math.min(1, Math.max(0, weights[i]))]));
  return (name, side = "") => byName.get(name + side);
}

function headOutline(jawOpen, cheekPuff) {
  return linspace(0, 2 * Math.PI, 4 * CURVE_POINTS).map((angle) => {
    const x = Math.cos(angle), y = Math.sin(angle);
    const below = Math.max(-y, 0);
    const halfWidth = 0.82 + 0.1 * cheekPuff * Math.sqrt(below);
    const height = y < 0 ? 1.0 + 0.18 * jawOpen : 1.05;
    return [x * halfWidth, y * height];
  });
}

function brow(w, side) {
  const sign = SIDES[side];
  const down = w("browDown", side), innerUp = w("browInnerUp"), outerUp = w("browOuterUp", side);
  const inner = [sign * (0.14 - 0.04 * down), BROW_Y + 0.16 * innerUp - 0.12 * down];
  const outer = [sign * 0.56, BROW_Y - 0.03 + 0.15 * outerUp - 0.05 * down];
  const middle = [sign * 0.35, (inner[1] + outer[1]) / 2 + 0.05 + 0.03 * outerUp - 0.02 * down];
  return [inner, middle, outer];
}

function eye(w, side) {
  const sign = SIDES[side];
  const blink = w("eyeBlink", side), wide = w("eyeWide", side), squint = w("eyeSquint", side);
  const openFraction = 1 - blink;
  const up = Math.max(0, EYE_OPEN_UP + 0.06 * wide - 0.035 * squint) * openFraction;
  let down = Math.max(0, EYE_OPEN_DOWN + 0.02 * wide - 0.035 * squint
                         - 0.02 * w("cheekSquint", side));
  down *= openFraction;
  const centreX = sign * EYE_X;
  const ts = linspace(-1, 1, CURVE_POINTS).map((t) => t * -sign);  // inner corner first
  const upper = ts.map((t) => [centreX + t * EYE_HALF_WIDTH, EYE_Y + up * (1 - t * t)]);
  const lower = ts.map((t) => [centreX + t * EYE_HALF_WIDTH, EYE_Y - down * (1 - t * t)]);
  const gazeX = sign * 0.08 * (w("eyeLookOut", side) - w("eyeLookIn", side));
  const gazeY = 0.05 * (w("eyeLookUp", side) - w("eyeLookDown", side));
  return {
    upperLid: upper, lowerLid: lower, irisCentre: [centreX + gazeX, EYE_Y + gazeY],
    irisRadius: IRIS_RADIUS, opening: up + down,
  };
}

function mouth(w) {
  const lift = {}, reach = {};
  for (const side of Object.keys(SIDES)) {
    lift[side] = 0.13 * w("mouthSmile", side) - 0.11 * w("mouthFrown", side)
      - 0.02 * w("mouthStretch", side) + 0.02 * w("mouthDimple", side);
    reach[side] = MOUTH_HALF_WIDTH * (1 + 0.3 * w("mouthStretch", side)
      + 0.12 * w("mouthSmile", side) + 0.08 * w("mouthDimple", side)
      - 0.04 * w("mouthPress", side));
  }
  const rounding = Math.max(w("mouthPucker"), 0.7 * w("mouthFunnel"));
  const narrow = 1 - 0.45 * rounding;
  const shift = 0.08 * (w("mouthLeft") - w("mouthRight")) + 0.05 * (w("jawLeft") - w("jawRight"));
  const power = 2 - 0.8 * rounding;
  const jaw = 0.3 * w("jawOpen") * (1 - w("mouthClose"));
  const pout = 0.025 * w("mouthPucker") + 0.03 * w("mouthFunnel");
  const upperGapBase = 0.008 + pout + 0.015 * w("mouthShrugUpper") - 0.006 * w("mouthRollUpper");
  const lowerGapBase = 0.008 + jaw + pout + 0.01 * w("mouthFunnel")
    - (0.02 * w("mouthShrugLower") + 0.006 * w("mouthRollLower"));
  const upper = [], lower = [];
  for (const t of linspace(-1, 1, CURVE_POINTS)) {
    const s = (t + 1) / 2;  // 0 at the subject's right corner, 1 at the left
    const x = shift + (t < 0 ? reach.Right : reach.Left) * t * narrow;
    const cornerY = (1 - s) * lift.Right + s * lift.Left;
    const middle = MOUTH_Y + cornerY * t * t;
    const bulge = 1 - Math.abs(t) ** power;
    const upperUp = (1 - s) * w("mouthUpperUpRight") + s * w("mouthUpperUpLeft");
    const lowerDown = (1 - s) * w("mouthLowerDownRight") + s * w("mouthLowerDownLeft");
    const upperGap = Math.max(upperGapBase + 0.07 * upperUp, 0);
    const lowerGap = Math.max(lowerGapBase + 0.07 * lowerDown, 0);
    upper.push([x, middle + upperGap * bulge]);
    lower.push([x, middle - lowerGap * bulge]);
  }
  const centre = Math.floor(CURVE_POINTS / 2);
  return {
    upperLip: upper, lowerLip: lower, opening: upper[centre][1] - lower[centre][1],
    width: upper[CURVE_POINTS - 1][0] - upper[0][0],
    cornerLift: [lift.Right, lift.Left], tongue: w("tongueOut"),
  };
}

function cheek(w, side) {
  const sign = SIDES[side];
  const squint = w("cheekSquint", side), puff = w("cheekPuff");
  return {
    centre: [sign * (CHEEK_X + 0.04 * puff), CHEEK_Y + 0.05 * squint],
    radius: CHEEK_RADIUS * (1 + 0.4 * puff),
    blush: Math.min(1, 0.12 + 0.45 * squint + 0.25 * puff),
  };
}

function sneerLine(amount, sign) {
  if (amount < 0.02) return [];
  const start = [sign * 0.11, NOSE_Y + 0.02];
  const length = Math.hypot(0.35, 1.0);
  const direction = [sign * 0.35 / length, 1.0 / length];
  return [start, [start[0] + direction[0] * 0.16 * amount, start[1] + direction[1] * 0.16 * amount]];
}

function nose(sneerLeft, sneerRight) {
  return [[-0.1, NOSE_Y + 0.03 + 0.04 * sneerRight], [0, NOSE_Y - 0.02],
          [0.1, NOSE_Y + 0.03 + 0.04 * sneerLeft]];
}

// The geometry of preview_face.face_geometry: pairs are (right, left) as there.
export function faceGeometry(weights, names) {
  const w = reader(weights, names);
  return {
    outline: headOutline(w("jawOpen"), w("cheekPuff")),
    brows: [brow(w, "Right"), brow(w, "Left")],
    eyes: [eye(w, "Right"), eye(w, "Left")],
    mouth: mouth(w),
    cheeks: [cheek(w, "Right"), cheek(w, "Left")],
    sneerLines: [sneerLine(w("noseSneer", "Right"), SIDES.Right),
                 sneerLine(w("noseSneer", "Left"), SIDES.Left)],
    nose: nose(w("noseSneerLeft"), w("noseSneerRight")),
  };
}

const SKIN = "#f3d2b3", LINE = "#3b2a20", LIP = "#b5474b", MOUTH = "#5a1a1e", BLUSH = "#e8837e";
const BROW = "#4a3426", IRIS = "#4f7cac", TONGUE = "#d9686f";
const VIEW = { left: -1.1, right: 1.1, bottom: -1.35, top: 1.15 };  // draw_face's limits

// Draws `geometry` on a 2D canvas context filling width x height (aspect kept, centred).
export function drawFace(context, geometry, width, height) {
  const scale = Math.min(width / (VIEW.right - VIEW.left), height / (VIEW.top - VIEW.bottom));
  const offsetX = (width - scale * (VIEW.right - VIEW.left)) / 2;
  const offsetY = (height - scale * (VIEW.top - VIEW.bottom)) / 2;
  const px = ([x, y]) => [offsetX + (x - VIEW.left) * scale, offsetY + (VIEW.top - y) * scale];
  const lineWidth = (points) => points * scale / 110;  // matplotlib points at the preview's size
  const path = (points, close = false) => {
    context.beginPath();
    points.forEach((point, i) => {
      const [x, y] = px(point);
      if (i === 0) context.moveTo(x, y); else context.lineTo(x, y);
    });
    if (close) context.closePath();
  };
  const stroke = (points, colour, width, cap = "butt") => {
    path(points);
    context.strokeStyle = colour;
    context.lineWidth = lineWidth(width);
    context.lineCap = cap;
    context.stroke();
  };
  const circle = (centre, radius) => {
    const [x, y] = px(centre);
    context.beginPath();
    context.arc(x, y, radius * scale, 0, 2 * Math.PI);
  };

  context.clearRect(0, 0, width, height);
  path(geometry.outline, true);
  context.fillStyle = SKIN;
  context.fill();
  context.strokeStyle = LINE;
  context.lineWidth = lineWidth(2);
  context.stroke();
  for (const cheek of geometry.cheeks) {
    circle(cheek.centre, cheek.radius);
    context.globalAlpha = cheek.blush;
    context.fillStyle = BLUSH;
    context.fill();
    context.globalAlpha = 1;
  }
  for (const brow of geometry.brows) stroke(brow, BROW, 5, "round");
  for (const eye of geometry.eyes) {
    if (eye.opening > 1e-3) {
      context.save();
      path([...eye.upperLid, ...[...eye.lowerLid].reverse()], true);
      context.fillStyle = "white";
      context.fill();
      context.clip();  // the lids cover what lies outside the eye opening
      circle(eye.irisCentre, eye.irisRadius);
      context.fillStyle = IRIS;
      context.fill();
      context.strokeStyle = LINE;
      context.lineWidth = lineWidth(1);
      context.stroke();
      circle(eye.irisCentre, eye.irisRadius * 0.45);
      context.fillStyle = "black";
      context.fill();
      context.restore();
    }
    stroke(eye.upperLid, LINE, 2.2);
    stroke(eye.lowerLid, LINE, 1.0);
  }
  stroke(geometry.nose, LINE, 1.5);
  for (const line of geometry.sneerLines) if (line.length) stroke(line, LINE, 1.2);
  const mouth = geometry.mouth;
  path([...mouth.upperLip, ...[...mouth.lowerLip].reverse()], true);
  context.fillStyle = MOUTH;
  context.fill();
  if (mouth.tongue > 0.05 && mouth.opening > 0.02) {
    const centre = mouth.lowerLip[Math.floor(mouth.lowerLip.length / 2)];
    const [x, y] = px([centre[0], centre[1] - 0.02 * mouth.tongue]);
    context.beginPath();
    context.ellipse(x, y, 0.11 * scale, (0.05 + 0.12 * mouth.tongue) / 2 * scale, 0, 0,
                    2 * Math.PI);
    context.fillStyle = TONGUE;
    context.fill();
    context.strokeStyle = LINE;
    context.lineWidth = lineWidth(0.8);
    context.stroke();
  }
  for (const lip of [mouth.upperLip, mouth.lowerLip]) stroke(lip, LIP, 3, "round");
}
