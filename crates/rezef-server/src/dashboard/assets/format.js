// How figures are written on the page, in one place (the browser test writes the API's
// figures with these same functions to compare them with the page).

/** A proto3 JSON count (uint64 is a string; zero is left out). */
export function count(value) {
  return Number(value ?? 0);
}

/** A ratio as a percentage with one decimal, or a dash when nothing was counted. */
export function percent(ratio) {
  return ratio === undefined || ratio === null ? '–' : `${(ratio * 100).toFixed(1)} %`;
}

/** "3 of 5 in target" for a ServiceLevel. */
export function inTarget(level) {
  const counted = count(level?.counted);
  const excluded = count(level?.excluded);
  const left = excluded ? `, ${excluded} left out` : '';
  return `${count(level?.inTarget)} of ${counted} in target${left}`;
}

/** Seconds of a proto3 JSON Duration ("12.500s"). */
export function seconds(duration) {
  return duration ? parseFloat(duration) : 0;
}

/** A duration: "42 s", "3:05", "1:02:09". */
export function duration(secs) {
  const whole = Math.round(secs);
  if (whole < 60) return `${whole} s`;
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = String(whole % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** A timestamp's time of day, UTC ("14:05:09"). */
export function time(timestamp) {
  return timestamp ? new Date(timestamp).toISOString().slice(11, 19) : '';
}

/** An enum's name for people: "DIFFERENCE_REASON_IVR_ABANDON" → "ivr abandon". */
export function words(name, prefix) {
  return (name ?? '').replace(prefix, '').toLowerCase().replaceAll('_', ' ');
}

/** camelCase → "camel case". */
export function camelWords(name) {
  return name.replace(/([A-Z])/g, ' $1').toLowerCase();
}
